"""Defaulting and validation of the objects kubesim stores, the generic part: nulls pruned, then
the kind's strategy (kubesim/kinds/) asked for its defaults, its causes and its immutables."""

from __future__ import annotations

from typing import Any

from kubesim.errors import ApiError, invalid
from kubesim.kinds.strategy import Strategy

JSON = dict[str, Any]


def prune_nulls(value: Any) -> Any:
    """Drop null fields, as decoding into Go structs with omitempty does (e.g. the
    `creationTimestamp: null` kubectl sends inside pod templates)."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            prune_nulls(item)
    elif isinstance(value, list):
        for item in value:
            prune_nulls(item)
    return value


def apply_defaults(strategy: Strategy, obj: JSON) -> None:
    prune_nulls(obj)
    strategy.default(obj)


def validate(strategy: Strategy, obj: JSON) -> None:
    """Raise 422 Invalid (with causes) when the object would be rejected by the real server."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    causes = strategy.name_causes(name) + strategy.validate(obj)
    if causes:
        rtype = strategy.resource
        raise invalid(rtype.kind, rtype.group, name, causes)


def validate_update(strategy: Strategy, old: JSON, new: JSON) -> None:
    """Immutable fields, checked on update like the real strategies do."""
    causes = strategy.validate_update(old, new)
    if causes:
        rtype = strategy.resource
        raise invalid(rtype.kind, rtype.group, new["metadata"]["name"], causes)


def ensure_object(body: Any) -> JSON:
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        raise ApiError(400, "the body of the request was in an unknown format")
    body.setdefault("metadata", {})
    return body
