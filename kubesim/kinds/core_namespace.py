"""Namespaces (core/v1): the metadata.name label and the `kubernetes` finalizer, a deletion that
marks the namespace Terminating until the garbage collector emptied it, kubectl's columns."""

from __future__ import annotations

from kubesim import resources as R
from kubesim.kinds.strategy import JSON, STRING, Row, Strategy, age


class NamespaceStrategy(Strategy):
    resource = R.NAMESPACES
    return_deleted_object = True
    terminating_phase = "Terminating"
    name_is_label = True
    columns = (("Name", STRING, 0), ("Status", STRING, 0), ("Age", STRING, 0))

    def default(self, obj: JSON) -> None:
        name = obj["metadata"].get("name", "")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")

    def row(self, obj: JSON, now: float) -> Row:
        return [obj["metadata"]["name"], obj.get("status", {}).get("phase", ""), age(obj, now)]
