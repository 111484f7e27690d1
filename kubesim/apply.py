"""Server-side apply and managedFields, simplified.

Simplification (documented in README): ownership is tracked per *leaf path* where maps are
descended into (so each label, annotation and scalar spec field is owned separately) but lists
are atomic (a manager owns `spec.template.spec.containers` as a whole). The real server tracks
list items by merge key. Conflicts, `force`, removal of fields a manager stopped applying, and
Update operations taking ownership of the fields they change all follow the real rules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kubesim.errors import ApiError
from kubesim.meta import now_iso

JSON = dict[str, Any]
Path = tuple[str, ...]

_SYSTEM_META = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
}
_MISSING = object()


def leaf_paths(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Map every owned leaf path to its value (maps descended, lists and scalars are leaves)."""
    result: dict[Path, Any] = {}
    if not isinstance(obj, dict) or (not obj and prefix):
        result[prefix] = obj
        return result
    for key, value in obj.items():
        if not prefix and key in ("apiVersion", "kind", "status"):
            continue
        if prefix == ("metadata",) and key in _SYSTEM_META:
            continue
        result.update(leaf_paths(value, (*prefix, key)))
    return result


def value_at(obj: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


def _remove_path(obj: JSON, path: Path) -> None:
    parents: list[tuple[JSON, str]] = []
    current: Any = obj
    for part in path[:-1]:
        if not isinstance(current, dict) or part not in current:
            return
        parents.append((current, part))
        current = current[part]
    if isinstance(current, dict):
        current.pop(path[-1], None)
    # Drop maps left empty by the removal, like the real server prunes them.
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]


def deep_merge(target: JSON, patch: JSON) -> JSON:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


# -- managedFields <-> path sets ----------------------------------------------------------


def _to_fields(paths: set[Path]) -> JSON:
    root: JSON = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return root


def _from_fields(fields: JSON, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    children = {k: v for k, v in fields.items() if k.startswith("f:")}
    if not children:
        return {prefix} if prefix else set()
    for key, value in children.items():
        paths |= _from_fields(value if isinstance(value, dict) else {}, (*prefix, key[2:]))
    return paths


ManagerKey = tuple[str, str, str]  # (manager, operation, subresource)


class Managers:
    """managedFields as {(manager, operation, subresource): (apiVersion, paths)}.

    Like the real server (1.22+), a write through a subresource (`scale`) is an entry of its
    own, marked `subresource: scale`, apart from the same manager's writes to the object."""

    def __init__(self, obj: JSON | None) -> None:
        self.entries: dict[ManagerKey, tuple[str, set[Path]]] = {}
        for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
            key = (
                str(entry.get("manager", "")),
                str(entry.get("operation", "Update")),
                str(entry.get("subresource", "")),
            )
            paths = _from_fields(entry.get("fieldsV1") or {})
            self.entries[key] = (str(entry.get("apiVersion", "")), paths)

    def take(
        self,
        key: ManagerKey,
        api_version: str,
        paths: set[Path],
        *,
        replace: bool,
        strip: set[Path],
    ) -> None:
        """Give `paths` to `key`; others lose what overlaps `strip` (shared ownership otherwise)."""
        for other, (version, owned) in list(self.entries.items()):
            if other != key:
                remaining = {p for p in owned if not any(_overlap(p, q) for q in strip)}
                self.entries[other] = (version, remaining)
        current = set() if replace else self.entries.get(key, ("", set()))[1]
        self.entries[key] = (api_version, current | paths)

    def render(self) -> list[JSON]:
        now = now_iso()
        rendered = []
        for (manager, operation, subresource), (version, paths) in self.entries.items():
            if not paths:
                continue
            entry: JSON = {
                "manager": manager,
                "operation": operation,
                "apiVersion": version,
                "time": now,
                "fieldsType": "FieldsV1",
                "fieldsV1": _to_fields(paths),
            }
            if subresource:
                entry["subresource"] = subresource
            rendered.append(entry)
        return rendered


def _overlap(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def track_update(
    old: JSON | None, new: JSON, manager: str, api_version: str, subresource: str = ""
) -> None:
    """Record an Update operation: the manager takes ownership of every field it changed
    (an entry of its own when the write came through a subresource such as `scale`)."""
    new_paths = leaf_paths(new)
    old_paths = leaf_paths(old) if old else {}
    changed = {p for p, v in new_paths.items() if old_paths.get(p, _MISSING) != v}
    managers = Managers(old)
    if changed:
        managers.take(
            (manager, "Update", subresource), api_version, changed, replace=False, strip=changed
        )
    new["metadata"]["managedFields"] = managers.render()


def server_side_apply(
    current: JSON | None,
    applied: JSON,
    *,
    manager: str,
    force: bool,
    api_version: str,
    defaulter: Callable[[JSON], None],
) -> JSON:
    """Merge `applied` into `current` for `manager`; raise 409 on conflicts unless `force`."""
    managers = Managers(current)
    key = (manager, "Apply", "")
    applied_paths = leaf_paths(applied)
    base = copy.deepcopy(current) if current else {"metadata": {}}
    previously = managers.entries.get(key, ("", set()))[1]
    owned_by_others = {p for k, (_, ps) in managers.entries.items() if k[0] != manager for p in ps}
    for path in previously - set(applied_paths):
        if not any(_overlap(path, q) for q in owned_by_others):
            _remove_path(base, path)
    merged = deep_merge(base, {k: v for k, v in applied.items() if k != "status"})
    defaulter(merged)
    changed = set()
    if current is not None:
        changed = _check_conflicts(current, merged, managers, manager, set(applied_paths), force)
    # Forced fields move to this manager; fields applied with the same value become shared.
    managers.take(key, api_version, set(applied_paths), replace=True, strip=changed)
    merged["metadata"]["managedFields"] = managers.render()
    return merged


def _check_conflicts(
    current: JSON, merged: JSON, managers: Managers, manager: str, paths: set[Path], force: bool
) -> set[Path]:
    """Return the conflicting paths (when forced); raise 409 when not forced."""
    conflicts: list[tuple[str, str, str]] = []
    conflicting: set[Path] = set()
    for (other, _op, _sub), (version, owned) in managers.entries.items():
        if other == manager:
            continue
        for path in sorted(paths):
            if any(_overlap(path, q) for q in owned) and value_at(current, path) != value_at(
                merged, path
            ):
                conflicts.append((other, version, "." + ".".join(path)))
                conflicting.add(path)
    if not conflicts or force:
        return conflicting
    lines = "\n".join(f'- conflict with "{m}" using {v}: {f}' for m, v, f in conflicts)
    count = len(conflicts)
    noun = "conflict" if count == 1 else "conflicts"
    if count == 1:
        message = (
            f'Apply failed with 1 conflict: conflict with "{conflicts[0][0]}" using '
            f"{conflicts[0][1]}: {conflicts[0][2]}"
        )
    else:
        message = f"Apply failed with {count} {noun}:\n{lines}"
    raise ApiError(
        409,
        message,
        details={
            "causes": [
                {
                    "type": "FieldManagerConflict",
                    "message": f'conflict with "{m}" using {v}',
                    "field": f,
                }
                for m, v, f in conflicts
            ]
        },
    )
