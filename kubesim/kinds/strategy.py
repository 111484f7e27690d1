"""What the generic layer (object API, HTTP handlers, garbage collector) asks about one kind.

As the real API server's registry (pkg/registry/<group>/<kind>/strategy.go): each kind has one
strategy object answering for its defaulting, validation, immutable fields, status handling,
allocations, deletion and printing. The base class answers as a plain object does (a ConfigMap):
a kind overrides only where it differs, and the generic layer never branches on a kind's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubesim.meta import human_age, is_dns_label, is_dns_subdomain, parse_iso
from kubesim.resources import ResourceType

JSON = dict[str, Any]
Cause = tuple[str, str, str]  # field, reason (FieldValueInvalid, ...), message
Column = tuple[str, str, int]  # name, type, priority
Row = list[Any]
STRING, INTEGER = "string", "integer"


def age(obj: JSON, now: float) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    return human_age(parse_iso(created), now) if created else "<unknown>"


class Strategy:
    resource: ResourceType
    # The DELETE answer: the deleted object (ReturnDeletedObject) rather than a Status.
    return_deleted_object = False
    # Deletion waits for a grace period, ended by someone else (the kubelet for pods).
    graceful_deletion = False
    # A DELETE always marks the object deleting with this status.phase (namespaces: their
    # content is emptied first), even without finalizers.
    terminating_phase = ""
    # metadata.name is a DNS-1123 label (63 characters, no dots) rather than a subdomain.
    name_is_label = False
    # The kind a subresource other than `scale` reads or writes, for discovery.
    subresource_kinds: Mapping[str, str] = {}
    # Server-side printing (kubectl get): column definitions, in `row` order.
    columns: tuple[Column, ...] = (("Name", STRING, 0), ("Age", STRING, 0))

    def __init__(self, resource: ResourceType | None = None) -> None:
        if resource is not None:
            self.resource = resource

    # -- create and update ---------------------------------------------------------------------

    def default(self, obj: JSON) -> None:
        """Fill the fields the server defaults (after nulls were pruned)."""

    def prepare_for_create(self, obj: JSON) -> None:
        if self.resource.has_status:
            obj.setdefault("status", {})  # as the real server answers a create: `status: {}`

    def prepare_for_update(self, old: JSON, new: JSON, subresource: str) -> JSON:
        """Reset what the request may not change: the status subresource changes status only;
        the object itself keeps its status."""
        if subresource == "status":
            merged = {**old, "status": new.get("status", old.get("status"))}
            merged["metadata"] = dict(old["metadata"])
            return merged
        if self.resource.has_status and "status" in old:
            new["status"] = old["status"]
        return new

    def bumps_generation(self, old: JSON, new: JSON) -> bool:
        """metadata.generation follows spec changes (kinds that have a generation)."""
        return self.resource.has_generation and _spec_part(old) != _spec_part(new)

    # -- validation ------------------------------------------------------------------------------

    def name_causes(self, name: str) -> list[Cause]:
        if not name:
            return [
                (
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                )
            ]
        valid = is_dns_label(name) if self.name_is_label else is_dns_subdomain(name)
        if valid:
            return []
        return [
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": a lowercase '
                "RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                "'-' or '.', and must start and end with an alphanumeric character",
            )
        ]

    def validate(self, obj: JSON) -> list[Cause]:
        """Causes of a 422 Invalid for the object's own fields (metadata.name is checked apart)."""
        return []

    def validate_update(self, old: JSON, new: JSON) -> list[Cause]:
        """Causes of a 422 Invalid for a change the kind forbids (immutable fields)."""
        return []

    # -- allocations (cluster IPs, node ports) ---------------------------------------------------

    def allocate(self, allocator: Any, obj: JSON, old: JSON | None) -> None:
        """Reserve what the object needs once it is admitted (never on a dry run)."""

    def release(self, allocator: Any, obj: JSON) -> None:
        """Free what `allocate` reserved, once the object is gone."""

    # -- deletion --------------------------------------------------------------------------------

    def deletion_grace(self, obj: JSON, requested: int | None) -> int:
        """Seconds a graceful deletion waits (0: the object goes at once)."""
        return 0

    # -- scale subresource -----------------------------------------------------------------------

    def to_scale(self, obj: JSON) -> JSON:
        """autoscaling/v1 Scale of an object whose kind serves the `scale` subresource."""
        meta = obj["metadata"]
        selector = obj.get("spec", {}).get("selector") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
            "status": {
                "replicas": obj.get("status", {}).get("replicas", 0),
                "selector": ",".join(
                    f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())
                ),
            },
        }

    # -- printing --------------------------------------------------------------------------------

    def row(self, obj: JSON, now: float) -> Row:
        return [obj["metadata"]["name"], age(obj, now)]


def _spec_part(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
