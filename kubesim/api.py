"""Object semantics shared by HTTP handlers and controllers: create, update, patch, delete."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubesim import resources as R
from kubesim.allocation import Allocator
from kubesim.apply import server_side_apply, track_update
from kubesim.errors import ApiError, already_exists, conflict, not_found
from kubesim.meta import deep_copy, iso, new_uid, now_iso, random_suffix
from kubesim.objects import apply_defaults, ensure_object, validate, validate_update
from kubesim.patch import json_patch, merge_patch, strategic_merge
from kubesim.store import Store

JSON = dict[str, Any]

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}


_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False


def _spec_part(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class ObjectApi:
    def __init__(self, store: Store, allocator: Allocator) -> None:
        self.store = store
        self.allocator = allocator

    # -- helpers -------------------------------------------------------------------------------

    def require_namespace(self, rtype: R.ResourceType, namespace: str) -> None:
        if rtype.namespaced and self.store.get(R.NAMESPACES, "", namespace) is None:
            raise not_found("namespaces", "", namespace)

    def get(self, rtype: R.ResourceType, namespace: str, name: str) -> JSON:
        obj = self.store.get(rtype, namespace if rtype.namespaced else "", name)
        if obj is None:
            raise not_found(rtype.plural, rtype.group, name)
        return obj

    def _check_namespace_terminating(self, rtype: R.ResourceType, namespace: str) -> None:
        ns = self.store.get(R.NAMESPACES, "", namespace)
        if rtype.namespaced and ns and ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"{rtype.plural} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                details={"name": namespace, "kind": rtype.plural},
            )

    # -- create --------------------------------------------------------------------------------

    def create(
        self,
        rtype: R.ResourceType,
        namespace: str,
        body: Any,
        *,
        manager: str,
        dry_run: bool = False,
    ) -> JSON:
        obj = ensure_object(deep_copy(body) if isinstance(body, dict) else body)
        meta = obj["metadata"]
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request",
                )
            meta["namespace"] = namespace
            self.require_namespace(rtype, namespace)
            self._check_namespace_terminating(rtype, namespace)
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{random_suffix()}"
        if meta.get("resourceVersion"):
            raise ApiError(500, "resourceVersion should not be set on objects to be created")
        obj["kind"], obj["apiVersion"] = rtype.kind, rtype.api_version
        submitted = deep_copy(obj)
        apply_defaults(rtype, obj)
        if rtype.has_status:
            obj.setdefault("status", {})  # as the real server answers a create: `status: {}`
        validate(rtype, obj)
        if self.store.get(rtype, namespace if rtype.namespaced else "", meta["name"]) is not None:
            raise already_exists(rtype.plural, rtype.group, meta["name"])
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_iso()
        if rtype.has_generation:
            meta["generation"] = 1
        track_update(None, submitted, manager, rtype.api_version)
        meta["managedFields"] = submitted["metadata"]["managedFields"]
        if rtype.kind == "Service":
            self._assign_service(obj, None, dry_run)
        if dry_run:
            return obj
        return self.store.put(rtype, obj)

    def _assign_service(self, obj: JSON, old: JSON | None, dry_run: bool) -> None:
        if not dry_run:
            self.allocator.assign(obj, old)

    # -- update --------------------------------------------------------------------------------

    def update(
        self,
        rtype: R.ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        subresource: str = "",
        dry_run: bool = False,
    ) -> JSON:
        new = ensure_object(deep_copy(body) if isinstance(body, dict) else body)
        old = self.get(rtype, namespace, name)
        meta = new["metadata"]
        if meta.get("name", name) != name:
            raise ApiError(
                400,
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})",
            )
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(
                rtype.plural,
                rtype.group,
                name,
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
            )
        return self._store_update(
            rtype, old, new, manager=manager, subresource=subresource, dry_run=dry_run
        )

    def _store_update(
        self,
        rtype: R.ResourceType,
        old: JSON,
        new: JSON,
        *,
        manager: str,
        subresource: str,
        dry_run: bool,
        managed: bool = True,
    ) -> JSON:
        new = self._merge_system_fields(rtype, old, new, subresource)
        apply_defaults(rtype, new)
        validate(rtype, new)
        validate_update(rtype, old, new)
        if rtype.has_generation and _spec_part(old) != _spec_part(new):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if managed:
            track_update(old, new, manager, rtype.api_version, subresource)
        if rtype.kind == "Service" and not subresource:
            self._assign_service(new, old, dry_run)
        if dry_run:
            return new
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and rtype.kind != "Pod":
            # The last finalizer was removed: the deletion completes now.
            return self._remove(rtype, new)
        return self.store.put(rtype, new)

    def _merge_system_fields(
        self, rtype: R.ResourceType, old: JSON, new: JSON, subresource: str
    ) -> JSON:
        if subresource == "status":
            # The status subresource changes status only.
            merged = {**old, "status": new.get("status", old.get("status"))}
            merged["metadata"] = dict(old["metadata"])
            return merged
        meta = new["metadata"]
        for key in (
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
        ):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        meta["name"] = old["metadata"]["name"]
        meta.setdefault("managedFields", old["metadata"].get("managedFields", []))
        new["kind"], new["apiVersion"] = rtype.kind, rtype.api_version
        if rtype.has_status and "status" in old:
            new["status"] = old["status"]
        return new

    # -- patch ---------------------------------------------------------------------------------

    def patch(
        self,
        rtype: R.ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        body: Any,
        *,
        manager: str,
        force: bool = False,
        subresource: str = "",
        dry_run: bool = False,
    ) -> JSON:
        if patch_type == "apply":
            return self._apply(
                rtype, namespace, name, body, manager=manager, force=force, dry_run=dry_run
            )
        old = self.get(rtype, namespace, name)
        if patch_type == "json":
            new = json_patch(old, body)
        elif not isinstance(body, dict):
            raise ApiError(400, "the body of the request was in an unknown format")
        elif patch_type == "merge":
            new = merge_patch(old, body)
        else:
            new = strategic_merge(old, body)
        new = deep_copy(new)
        rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(
                rtype.plural,
                rtype.group,
                name,
                "the object has been modified; please "
                "apply your changes to the latest version and try again",
            )
        return self._store_update(
            rtype, old, new, manager=manager, subresource=subresource, dry_run=dry_run
        )

    def _apply(
        self,
        rtype: R.ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        force: bool,
        dry_run: bool,
    ) -> JSON:
        applied = ensure_object(deep_copy(body) if isinstance(body, dict) else body)
        if applied["metadata"].get("name", name) != name:
            raise ApiError(
                400,
                f"the name of the object ({applied['metadata']['name']}) does not "
                f"match the name on the URL ({name})",
            )
        if rtype.namespaced:
            self.require_namespace(rtype, namespace)
        current = self.store.get(rtype, namespace if rtype.namespaced else "", name)
        # SECURITY: as the real server, an apply naming a resourceVersion is a precondition: a
        # stale one is a 409, so a client that checked ownership at that version cannot take
        # over an object another owner changed since.
        rv = applied["metadata"].get("resourceVersion")
        if rv and current is not None and rv != current["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, rtype.group, name, _MODIFIED)
        applied["metadata"]["name"] = name
        merged = server_side_apply(
            current,
            applied,
            manager=manager,
            force=force,
            api_version=rtype.api_version,
            defaulter=lambda obj: apply_defaults(rtype, obj),
        )
        if current is None:
            managed = merged["metadata"].pop("managedFields")
            created = self.create(rtype, namespace, merged, manager=manager, dry_run=True)
            created["metadata"]["managedFields"] = managed
            if rtype.kind == "Service":
                self._assign_service(created, None, dry_run)
            return created if dry_run else self.store.put(rtype, created)
        return self._store_update(
            rtype, current, merged, manager=manager, subresource="", dry_run=dry_run, managed=False
        )

    # -- delete --------------------------------------------------------------------------------

    def delete(
        self, rtype: R.ResourceType, namespace: str, name: str, options: DeleteOptions
    ) -> JSON:
        """Return the object when deletion is pending (grace, finalizers), else a final copy."""
        obj = self.get(rtype, namespace, name)
        meta = obj["metadata"]
        if options.precondition_uid and options.precondition_uid != meta.get("uid"):
            raise conflict(
                rtype.plural,
                rtype.group,
                name,
                "Precondition failed: UID in "
                f"precondition: {options.precondition_uid}, UID in object meta: {meta.get('uid')}",
            )
        if options.precondition_rv and options.precondition_rv != meta.get("resourceVersion"):
            raise conflict(
                rtype.plural,
                rtype.group,
                name,
                "Precondition failed: ResourceVersion "
                f"in precondition: {options.precondition_rv}, ResourceVersion in object "
                f"meta: {meta.get('resourceVersion')}",
            )
        if options.dry_run:
            return obj
        if rtype.kind == "Pod":
            return self._delete_pod(obj, options)
        propagation = options.propagation or "Background"
        if propagation == "Orphan":
            self._orphan_dependents(obj)
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and self.store.dependents(meta["uid"]):
            finalizers.append("foregroundDeletion")
        if rtype.kind == "Namespace":
            return self._mark_deleting(rtype, obj, finalizers, phase="Terminating")
        if finalizers:
            return self._mark_deleting(rtype, obj, finalizers)
        return self._remove(rtype, obj)

    def _mark_deleting(
        self, rtype: R.ResourceType, obj: JSON, finalizers: list[str], phase: str = ""
    ) -> JSON:
        if obj["metadata"].get("deletionTimestamp"):
            return obj
        new = deep_copy(obj)
        new["metadata"]["deletionTimestamp"] = now_iso()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        if finalizers:
            new["metadata"]["finalizers"] = sorted(set(finalizers))
        if phase:
            new.setdefault("status", {})["phase"] = phase
        return self.store.put(rtype, new)

    def _remove(self, rtype: R.ResourceType, obj: JSON) -> JSON:
        meta = obj["metadata"]
        removed = self.store.remove(rtype, meta.get("namespace", ""), meta["name"])
        if rtype.kind == "Service":
            self.allocator.release(obj)
        return removed or obj

    def _orphan_dependents(self, owner: JSON) -> None:
        uid = owner["metadata"]["uid"]
        for plural, namespace, name in self.store.dependents(uid):
            dep_type = next(t for t in R.ALL_TYPES if t.plural == plural)
            dependent = self.store.get(dep_type, namespace, name)
            if dependent is None:
                continue
            new = deep_copy(dependent)
            refs = [r for r in new["metadata"].get("ownerReferences", []) if r.get("uid") != uid]
            new["metadata"]["ownerReferences"] = refs
            if not refs:
                new["metadata"].pop("ownerReferences")
            self.store.put(dep_type, new)

    def _delete_pod(self, pod: JSON, options: DeleteOptions) -> JSON:
        meta = pod["metadata"]
        grace = options.grace_period
        if grace is None:
            grace = int(pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))
        unscheduled = not pod.get("spec", {}).get("nodeName")
        if grace <= 0 or unscheduled:
            return self._remove(R.PODS, pod)
        current_grace = meta.get("deletionGracePeriodSeconds")
        if current_grace is not None and current_grace <= grace:
            return pod
        new = deep_copy(pod)
        new["metadata"]["deletionTimestamp"] = iso(time.time() + grace)
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        return self.store.put(R.PODS, new)

    def finalize(self, rtype: R.ResourceType, obj: JSON, finalizer: str) -> None:
        """Drop one finalizer; remove the object when none are left and it is being deleted."""
        new = deep_copy(obj)
        remaining = [f for f in new["metadata"].get("finalizers", []) if f != finalizer]
        new["metadata"]["finalizers"] = remaining
        if not remaining:
            new["metadata"].pop("finalizers")
            if new["metadata"].get("deletionTimestamp"):
                self._remove(rtype, new)
                return
        self.store.put(rtype, new)
