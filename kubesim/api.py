"""Object semantics shared by HTTP handlers and controllers: create, update, patch, delete."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubesim import resources as R
from kubesim.allocation import Allocator
from kubesim.apply import server_side_apply, track_update
from kubesim.errors import ApiError, already_exists, conflict, not_found
from kubesim.kinds import Kinds, Strategy
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


class ObjectApi:
    def __init__(self, store: Store, allocator: Allocator, kinds: Kinds) -> None:
        self.store = store
        self.allocator = allocator
        self.kinds = kinds

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
        strategy = self.kinds.of(rtype)
        apply_defaults(strategy, obj)
        strategy.prepare_for_create(obj)
        validate(strategy, obj)
        if self.store.get(rtype, namespace if rtype.namespaced else "", meta["name"]) is not None:
            raise already_exists(rtype.plural, rtype.group, meta["name"])
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_iso()
        if rtype.has_generation:
            meta["generation"] = 1
        track_update(None, submitted, manager, rtype.api_version)
        meta["managedFields"] = submitted["metadata"]["managedFields"]
        if dry_run:
            return obj
        strategy.allocate(self.allocator, obj, None)
        return self.store.put(rtype, obj)

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
        strategy = self.kinds.of(rtype)
        new = self._merge_system_fields(strategy, old, new, subresource)
        apply_defaults(strategy, new)
        validate(strategy, new)
        validate_update(strategy, old, new)
        if strategy.bumps_generation(old, new):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if managed:
            track_update(old, new, manager, rtype.api_version, subresource)
        if dry_run:
            return new
        if not subresource:
            strategy.allocate(self.allocator, new, old)
        meta = new["metadata"]
        # A graceful deletion is ended by its own controller (the kubelet for pods).
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not strategy.graceful_deletion
        ):
            # The last finalizer was removed: the deletion completes now.
            return self._remove(rtype, new)
        return self.store.put(rtype, new)

    def _merge_system_fields(
        self, strategy: Strategy, old: JSON, new: JSON, subresource: str
    ) -> JSON:
        if subresource == "status":
            return strategy.prepare_for_update(old, new, subresource)
        rtype = strategy.resource
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
        return strategy.prepare_for_update(old, new, subresource)

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
            defaulter=lambda obj: apply_defaults(self.kinds.of(rtype), obj),
        )
        if current is None:
            managed = merged["metadata"].pop("managedFields")
            created = self.create(rtype, namespace, merged, manager=manager, dry_run=True)
            created["metadata"]["managedFields"] = managed
            if dry_run:
                return created
            self.kinds.of(rtype).allocate(self.allocator, created, None)
            return self.store.put(rtype, created)
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
        strategy = self.kinds.of(rtype)
        if strategy.graceful_deletion:
            return self._delete_gracefully(strategy, obj, options)
        propagation = options.propagation or "Background"
        if propagation == "Orphan":
            self._orphan_dependents(obj)
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and self.store.dependents(meta["uid"]):
            finalizers.append("foregroundDeletion")
        if strategy.terminating_phase:
            return self._mark_deleting(rtype, obj, finalizers, phase=strategy.terminating_phase)
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
        self.kinds.of(rtype).release(self.allocator, obj)
        return removed or obj

    def _orphan_dependents(self, owner: JSON) -> None:
        uid = owner["metadata"]["uid"]
        for plural, namespace, name in self.store.dependents(uid):
            dep_type = self.kinds.by_plural(plural)
            dependent = self.store.get(dep_type, namespace, name)
            if dependent is None:
                continue
            new = deep_copy(dependent)
            refs = [r for r in new["metadata"].get("ownerReferences", []) if r.get("uid") != uid]
            new["metadata"]["ownerReferences"] = refs
            if not refs:
                new["metadata"].pop("ownerReferences")
            self.store.put(dep_type, new)

    def _delete_gracefully(self, strategy: Strategy, obj: JSON, options: DeleteOptions) -> JSON:
        """Mark the object to go after its grace period (a shorter request wins); the kind's
        controller removes it. No grace: it goes now."""
        rtype = strategy.resource
        grace = strategy.deletion_grace(obj, options.grace_period)
        if grace <= 0:
            return self._remove(rtype, obj)
        current_grace = obj["metadata"].get("deletionGracePeriodSeconds")
        if current_grace is not None and current_grace <= grace:
            return obj
        new = deep_copy(obj)
        new["metadata"]["deletionTimestamp"] = iso(time.time() + grace)
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        return self.store.put(rtype, new)

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
