"""JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch.

Strategic merge uses the merge keys of the core types kubesim serves; lists without a known
key are replaced, as for atomic lists in the real server. Supported directives: `$patch`
(replace/delete/merge), `$retainKeys`, `$setElementOrder/<list>` (ignored: order follows
the patch) and `$deleteFromPrimitiveList/<list>`.
"""

from __future__ import annotations

import copy
from typing import Any

from kubesim.errors import ApiError

JSON = dict[str, Any]

# list field name -> candidate merge keys, first one present in the elements wins.
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "ports": ("containerPort", "port"),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey",),
}
# Primitive lists merged as sets in strategic merge patch.
SET_LISTS = {"finalizers"}


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


# -- JSON merge patch ---------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- JSON patch ---------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _bad(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise _bad(f"doc is missing path: {'/' + '/'.join(parts)}")
            doc = doc[part]
        elif isinstance(doc, list):
            doc = doc[_index(doc, part, allow_end=False)]
        else:
            raise _bad(f"doc is missing path: {'/' + '/'.join(parts)}")
    return doc


def _index(items: list[Any], part: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(items)
    try:
        index = int(part)
    except ValueError:
        raise _bad(f"invalid array index: {part!r}") from None
    if index < 0 or index > len(items) or (index == len(items) and not allow_end):
        raise _bad(f"array index out of bounds: {index}")
    return index


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise _bad("add operation does not apply: parent is not a container")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _bad(f"remove operation does not apply: doc is missing path: /{'/'.join(parts)}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, allow_end=False))
    raise _bad("remove operation does not apply")


def json_patch(target: JSON, operations: Any) -> JSON:
    if not isinstance(operations, list):
        raise _bad("json patch must be a list of operations")
    doc: Any = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _bad(f"invalid json patch operation: {op!r}")
        parts = _pointer(op["path"])
        kind = op["op"]
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            _walk(doc, parts)  # must exist
            if parts:
                _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(doc, source))
            if kind == "move":
                _remove(doc, source)
            doc = _add(doc, parts, value)
        elif kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise ApiError(422, f"testing value {op['path']} failed", reason="Invalid")
        else:
            raise _bad(f"Unexpected kind: {kind}")
    if not isinstance(doc, dict):
        raise _bad("json patch result is not an object")
    return doc


# -- strategic merge patch ----------------------------------------------------------------


def _merge_key(field: str, items: list[Any]) -> str | None:
    candidates = MERGE_KEYS.get(field)
    if not candidates:
        return None
    for key in candidates:
        if any(isinstance(item, dict) and key in item for item in items):
            return key
    return candidates[0]


def _merge_keyed_list(field: str, key: str, original: list[Any], patch: list[Any]) -> list[Any]:
    result = [copy.deepcopy(item) for item in original]
    for item in patch:
        if not isinstance(item, dict):
            raise _bad(f"list {field} must contain objects")
        directive = item.get("$patch")
        match = next(
            (
                i
                for i, cur in enumerate(result)
                if isinstance(cur, dict) and cur.get(key) == item.get(key)
            ),
            None,
        )
        if directive == "delete":
            if match is not None:
                result.pop(match)
            continue
        if directive == "replace":
            clean = {k: v for k, v in item.items() if k != "$patch"}
            if match is None:
                result.append(clean)
            else:
                result[match] = clean
            continue
        if match is None:
            result.append(strategic_merge({}, item))
        else:
            result[match] = strategic_merge(result[match], item)
    return result


def _merge_list(field: str, original: Any, patch: list[Any]) -> list[Any]:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" and len(i) == 1 for i in patch):
        return [i for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    current = original if isinstance(original, list) else []
    if field in SET_LISTS:
        merged = list(current)
        merged += [item for item in patch if item not in merged]
        return merged
    key = _merge_key(field, patch + current)
    if key is None:
        return copy.deepcopy(patch)
    return _merge_keyed_list(field, key, current, patch)


def strategic_merge(original: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result: JSON = dict(original) if isinstance(original, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result
