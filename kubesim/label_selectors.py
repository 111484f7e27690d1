"""Label selectors (equality and set-based) and field selectors, as the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubesim.errors import bad_request
from kubesim.meta import get_path, labels_of

JSON = dict[str, Any]

_SET_EXPR = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ_EXPR = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" also match objects without the label, as in Kubernetes.
        return not present or labels[self.key] not in self.values


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def _parse_requirement(part: str) -> Requirement:
    eq = _EQ_EXPR.match(part)
    if eq:
        key, op, value = eq.groups()
        return Requirement(key, "!=" if op == "!=" else "=", frozenset({value}))
    match = _SET_EXPR.match(part)
    if not match:
        raise bad_request(f"unable to parse requirement: {part.strip()!r}")
    negated, key, set_op, values = match.groups()
    if set_op:
        if negated:
            raise bad_request(f"unable to parse requirement: {part.strip()!r}")
        items = frozenset(v.strip() for v in values.split(",") if v.strip())
        return Requirement(key, set_op, items)
    return Requirement(key, "!" if negated else "exists")


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text:
        return []
    return [_parse_requirement(part) for part in _split_top_level(text)]


def from_label_selector(selector: JSON | None) -> list[Requirement]:
    """Convert a structured metav1.LabelSelector (matchLabels/matchExpressions)."""
    if not selector:
        return []
    reqs = [
        Requirement(k, "=", frozenset({v})) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise bad_request(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr["key"], op, frozenset(expr.get("values") or [])))
    return reqs


def labels_match(reqs: list[Requirement], labels: dict[str, str]) -> bool:
    return all(req.matches(labels) for req in reqs)


def selector_string(selector: JSON | None) -> str:
    """Render a structured selector like kubectl's SELECTOR column."""
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        parts.append(f"{expr['key']} {expr['operator'].lower()} ({values})")
    return ",".join(parts) or "<none>"


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    negate: bool
    value: str

    def matches(self, obj: JSON) -> bool:
        actual = get_path(obj, self.path)
        text = "" if actual is None else str(actual)
        if isinstance(actual, bool):
            text = "true" if actual else "false"
        return (text == self.value) != self.negate


def parse_field_selector(text: str | None) -> list[FieldRequirement]:
    if not text:
        return []
    reqs = []
    for part in text.split(","):
        match = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise bad_request(f'invalid selector: "{text}"; can\'t understand "{part}"')
        path, op, value = match.groups()
        reqs.append(FieldRequirement(path, op == "!=", value))
    return reqs


ObjectFilter = Callable[[JSON], bool]


def make_filter(label_selector: str | None, field_selector: str | None) -> ObjectFilter | None:
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector)
    if not labels and not fields:
        return None

    def matches(obj: JSON) -> bool:
        return labels_match(labels, labels_of(obj)) and all(f.matches(obj) for f in fields)

    return matches
