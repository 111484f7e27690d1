"""Where a watch starts: legacy resourceVersion semantics and the streaming list (WatchList).

The rules, as the API server applies them (apimachinery `SetListOptionsDefaults` with the
WatchList feature on, then `ValidateListOptions`):

1. A watch that names neither `sendInitialEvents` nor `resourceVersionMatch` and whose
   `resourceVersion` is unset or "0" is a legacy "current state, then changes" watch; the
   server treats it as `sendInitialEvents=true&resourceVersionMatch=NotOlderThan`.
2. `sendInitialEvents` (true or false) requires `resourceVersionMatch=NotOlderThan`, and
   `resourceVersionMatch` on a watch requires `sendInitialEvents`; both are 422 Invalid
   (kind ListOptions, group meta.k8s.io) listing every broken rule. `continue` is refused with
   `resourceVersionMatch`. A list (not a watch) may not name `sendInitialEvents`.
3. `sendInitialEvents=true`: the current objects of the selection as ADDED events (at a
   resourceVersion not older than the one asked for; a version this server has not reached
   yet is 504 "Too large resource version"), then, only when `allowWatchBookmarks=true`, a
   BOOKMARK carrying that state's resourceVersion and the annotation
   `k8s.io/initial-events-end: "true"`, then the changes after it.
4. `sendInitialEvents=false`: no initial events; the changes after `resourceVersion`, or
   after the current state when it is unset or "0".
5. Otherwise (a legacy watch from a resourceVersion): the changes after it (410 when compacted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kubesim.errors import ApiError, bad_request, invalid

NOT_OLDER_THAN = "NotOlderThan"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class WatchStart:
    since: int | None  # replay the changes after this resourceVersion; None: start from now
    initial_events: bool  # with since=None: the current objects as ADDED events first
    end_bookmark: bool  # after the initial events: the initial-events-end BOOKMARK


def flag(query: Mapping[str, str], name: str) -> bool | None:
    """A boolean query parameter as Go's strconv.ParseBool reads it; None when absent."""
    text = query.get(name)
    if text is None:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise bad_request(f'invalid value "{text}" for query parameter {name}: must be a boolean')


def check_list_options(query: Mapping[str, str]) -> None:
    """Rule 2 for a list: `sendInitialEvents` belongs to watches only."""
    if query.get("sendInitialEvents") is not None:
        raise _invalid(
            [("sendInitialEvents", "Forbidden", "sendInitialEvents is forbidden for list")]
        )


def watch_start(query: Mapping[str, str], current: int) -> WatchStart:
    """Where a watch with this query starts, `current` being the store's resourceVersion."""
    version_text = query.get("resourceVersion") or ""
    send_initial = flag(query, "sendInitialEvents")
    match = query.get("resourceVersionMatch") or ""
    if send_initial is None and not match and version_text in ("", "0"):
        send_initial, match = True, NOT_OLDER_THAN  # rule 1
    _validate(send_initial, match, query.get("continue"))
    version = _parse_version(version_text)
    if send_initial is True:
        if version is not None and version > current:
            raise _too_large(version, current)
        bookmark = flag(query, "allowWatchBookmarks") is True
        return WatchStart(since=None, initial_events=True, end_bookmark=bookmark)
    if send_initial is False and version is None:
        return WatchStart(since=None, initial_events=False, end_bookmark=False)
    return WatchStart(since=version, initial_events=False, end_bookmark=False)


def _validate(send_initial: bool | None, match: str, continue_token: str | None) -> None:
    causes: list[tuple[str, str, str]] = []
    if send_initial is not None and match != NOT_OLDER_THAN:
        causes.append(
            (
                "resourceVersionMatch",
                "Forbidden",
                f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}",
            )
        )
    if match:
        if send_initial is None:
            causes.append(
                (
                    "resourceVersionMatch",
                    "Forbidden",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
                    "provided",
                )
            )
        if match != NOT_OLDER_THAN:
            causes.append(
                (
                    "resourceVersionMatch",
                    "NotSupported",
                    f'Unsupported value: "{match}": supported values: "{NOT_OLDER_THAN}"',
                )
            )
        if continue_token:
            causes.append(
                (
                    "resourceVersionMatch",
                    "Forbidden",
                    "resourceVersionMatch is forbidden when continue is provided",
                )
            )
    if causes:
        raise _invalid(causes)


def _invalid(causes: list[tuple[str, str, str]]) -> ApiError:
    """422 as the API server words it: `<field>: Forbidden: <detail>` per broken rule."""
    worded = [
        (
            field,
            f"FieldValue{reason}",
            message if reason == "NotSupported" else f"{reason}: {message}",
        )
        for field, reason, message in causes
    ]
    return invalid("ListOptions", "meta.k8s.io", "", worded)


def _parse_version(text: str) -> int | None:
    if text in ("", "0"):
        return None
    try:
        version = int(text)
    except ValueError:
        version = -1
    if version < 0:
        raise bad_request(f'invalid resource version "{text}"')
    return version


def _too_large(version: int, current: int) -> ApiError:
    return ApiError(
        504,
        f"Too large resource version: {version}, current: {current}",
        reason="Timeout",
        details={
            "causes": [
                {
                    "reason": "ResourceVersionTooLarge",
                    "message": "Too large resource version",
                }
            ],
            "retryAfterSeconds": 1,
        },
    )
