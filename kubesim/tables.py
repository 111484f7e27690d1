"""Server-side printing (meta.k8s.io/v1 Table), the format kubectl asks for on `get`: the
columns and rows are the kind strategy's (kubesim/kinds/), the envelope is the same for all."""

from __future__ import annotations

import time
from typing import Any

from kubesim.kinds.strategy import Strategy

JSON = dict[str, Any]


def _row_object(obj: JSON, include: str) -> JSON | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(
    strategy: Strategy, objects: list[JSON], list_meta: JSON, include: str = "Metadata"
) -> JSON:
    now = time.time()
    definitions = [
        {
            "name": name,
            "type": type_,
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": priority,
        }
        for name, type_, priority in strategy.columns
    ]
    rows = [
        {"cells": strategy.row(obj, now), "object": _row_object(obj, include)} for obj in objects
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": rows,
    }
