"""Small helpers for object metadata: timestamps, uids, generated names."""

from __future__ import annotations

import copy
import json
import random
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

# Kubernetes' rand.String alphabet: no vowels or look-alike digits, so names never spell words.
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

_rng = random.Random()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_nano(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> float:
    return datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix(length: int = 5) -> str:
    return "".join(_rng.choice(_ALPHABET) for _ in range(length))


def safe_encode(number: int, length: int = 10) -> str:
    """Encode a hash into the pod-template-hash alphabet (like rand.SafeEncodeString)."""
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[number % len(_ALPHABET)])
        number //= len(_ALPHABET)
    return "".join(chars).rstrip(_ALPHABET[0]) or _ALPHABET[1]


def is_dns_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(_DNS_SUBDOMAIN.match(name))


def is_dns_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS_LABEL.match(name))


def deep_copy(obj: JSON) -> JSON:
    # json round trip is faster than copy.deepcopy for plain JSON data.
    try:
        result: JSON = json.loads(json.dumps(obj))
    except (TypeError, ValueError):
        result = copy.deepcopy(obj)
    return result


def human_age(since: float, now: float | None = None) -> str:
    """Format like kubectl's duration.HumanDuration (5s, 3m2s, 10m, 3h4m, 2d)."""
    seconds = int((now if now is not None else time.time()) - since)
    if seconds < 0:
        return "<invalid>"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    return f"{days}d"


def get_path(obj: Any, dotted: str) -> Any:
    """Follow a dotted field path (used by field selectors); None when absent."""
    current = obj
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def labels_of(obj: JSON) -> dict[str, str]:
    labels: dict[str, str] = obj.get("metadata", {}).get("labels") or {}
    return labels


def owner_uids(obj: JSON) -> list[str]:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return [str(ref.get("uid")) for ref in refs if ref.get("uid")]


def controller_ref(owner: JSON, kind: str, api_version: str) -> JSON:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
