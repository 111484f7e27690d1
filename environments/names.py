"""Kubernetes names that come from users, checked before anything is sent to the cluster.

SECURITY: a pod, container or object name taken from a URL, a query string, a form or a
websocket message becomes part of an API server URL. ``..`` or ``.`` there is resolved by the
client to another resource (the namespace itself), whose answer broke the page with the
cluster's credentials in the error report. Only names Kubernetes itself accepts pass:

- pods and other objects: a DNS-1123 subdomain (lower-case letters, digits, ``-`` and ``.``,
  each dot-separated part starting and ending with a letter or digit), at most 253 characters;
- containers: a DNS-1123 label (no dots), at most 63 characters.

This module imports nothing of Apollo, so that every layer (views, consumers, services and
the Kubernetes adapter) can check the same way.
"""

import re

SUBDOMAIN_MAX = 253
LABEL_MAX = 63
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
LABEL_RE = re.compile(_LABEL)
SUBDOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_SHOWN = 60  # at most this much of a refused name is repeated in the message


class InvalidName(ValueError):
    """A name that Kubernetes would not accept; the message says which rule it breaks."""


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def check_object_name(value: object, *, what: str = "pod") -> str:
    """value if it is a DNS-1123 subdomain (a pod or object name), else InvalidName."""
    if not isinstance(value, str) or not value:
        raise InvalidName(f"a {what} name is required")
    if len(value) > SUBDOMAIN_MAX or not SUBDOMAIN_RE.fullmatch(value):
        raise InvalidName(
            f"{_shown(value)} is not a valid {what} name: use lower-case letters, digits, '-' "
            f"and '.', starting and ending with a letter or digit, at most {SUBDOMAIN_MAX} "
            "characters"
        )
    return value


def check_container_name(value: object) -> str:
    """value if it is a DNS-1123 label (a container name), else InvalidName."""
    if not isinstance(value, str) or not value:
        raise InvalidName("a container name is required")
    if len(value) > LABEL_MAX or not LABEL_RE.fullmatch(value):
        raise InvalidName(
            f"{_shown(value)} is not a valid container name: use lower-case letters, digits "
            f"and '-', starting and ending with a letter or digit, at most {LABEL_MAX} "
            "characters"
        )
    return value


CLOSE_REASON_BYTES = 123  # the most a websocket close frame's reason may carry


def close_reason(text: str) -> str:
    """text cut to fit a websocket close frame (at most 123 bytes of UTF-8)."""
    return text.encode()[:CLOSE_REASON_BYTES].decode(errors="ignore")
