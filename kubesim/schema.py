"""Unknown fields, judged by the real API server's published OpenAPI v3 schemas.

kubesim/openapi.json is the real server's /openapi/v3 trimmed to the kinds kubesim serves
(written by cluster/fetch_openapi.py from the running control plane; not hand-written). A field
the schema does not declare is *unknown*: the real server drops it with a warning
(`fieldValidation=Warn`, the default), drops it silently (`Ignore`) or refuses the request with
`400 BadRequest` (`Strict`); a server-side apply refuses it whatever the setting (`500`, "field
not declared in schema"). Unknown fields are never stored. A malformed quantity (`cpu: lots`,
where the schema names resource.Quantity) is a `400` whatever the setting.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from kubesim.errors import ApiError, bad_request

SCHEMAS = Path(__file__).with_name("openapi.json")
VALIDATIONS = ("Ignore", "Warn", "Strict")
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# resource.ParseQuantity: a number, then one suffix (binary SI, decimal SI or an exponent).
_QUANTITY = re.compile(
    r"[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?"
)
QUANTITY_MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def _is_quantity(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and _QUANTITY.fullmatch(value) is not None


@functools.cache
def _document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMAS.read_text())
    return data


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    schemas = _document()["schemas"]
    while True:
        if "$ref" in schema:
            schema = {**schemas[schema["$ref"]], **{k: v for k, v in schema.items() if k != "$ref"}}
        elif schema.get("allOf"):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = {**_resolve(part), **merged}
            schema = merged
        else:
            return schema


def unknown_fields(api_version: str, kind: str, obj: Any, *, apply: bool = False) -> list[str]:
    """The paths of the fields of `obj` its kind's schema does not declare, and drop them.

    Paths are written as the real server writes them: `spec.replcas`,
    `spec.template.spec.containers[0].imagePullPolcy` (for a server-side apply, list items
    named by their `name`: `.spec.template.spec.containers[name="app"].x`)."""
    name = _document()["kinds"].get(f"{api_version}/{kind}")
    if name is None or not isinstance(obj, dict):
        return []
    found: list[str] = []
    _walk({"$ref": name}, obj, "." if apply else "", found, apply)
    return found


def _walk(schema: dict[str, Any], value: Any, path: str, found: list[str], apply: bool) -> None:
    if schema.get("$ref") == QUANTITY:
        if not _is_quantity(value):
            raise bad_request(QUANTITY_MESSAGE)
        return
    schema = _resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get(
        "x-kubernetes-int-or-string"
    ):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if properties is None and extra is None:
            return  # an open object (fieldsV1, RawExtension, ...)
        prefix = path if path in ("", ".") else path + "."
        for key in list(value):
            if key.startswith("$"):
                continue  # strategic merge patch directives
            if properties is not None and key in properties:
                _walk(properties[key], value[key], prefix + key, found, apply)
            elif isinstance(extra, dict):
                _walk(extra, value[key], prefix + key, found, apply)
            elif extra is None:
                found.append(prefix + key)
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            named = apply and isinstance(item, dict) and isinstance(item.get("name"), str)
            at = f'[name="{item["name"]}"]' if named else f"[{index}]"
            _walk(schema["items"], item, path + at, found, apply)


def field_validation(query: Any) -> str:
    value = query.get("fieldValidation") or "Warn"
    if value not in VALIDATIONS:
        raise bad_request(
            f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{value}"'
        )
    return str(value)


def check_request(api_version: str, kind: str, body: Any, *, validation: str) -> list[str]:
    """Drop the unknown fields of a create, update or patch body: the warnings to send (Warn),
    none (Ignore), or a 400 listing them all (Strict)."""
    unknown = unknown_fields(api_version, kind, body)
    if not unknown or validation == "Ignore":
        return []
    if validation == "Strict":
        listed = ", ".join(f'unknown field "{path}"' for path in unknown)
        raise bad_request(f"strict decoding error: {listed}")
    return [f'unknown field "{path}"' for path in unknown]


def check_apply(api_version: str, kind: str, name: str, body: Any, *, validation: str) -> None:
    """A server-side apply with an undeclared field fails whatever fieldValidation says."""
    unknown = unknown_fields(api_version, kind, body, apply=True)
    if not unknown:
        return
    where = f"failed to create typed patch object (/{name}; {api_version}, Kind={kind})"
    if validation == "Strict" and len(unknown) > 1:
        listed = "".join(f"\n  {path}: field not declared in schema" for path in unknown)
        raise ApiError(500, f"{where}: errors:{listed}")
    raise ApiError(500, f"{where}: {unknown[0]}: field not declared in schema")
