"""Garbage collector (ownerReferences cascading) and namespace deletion."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubesim import resources as R
from kubesim.api import DeleteOptions
from kubesim.cluster import Cluster
from kubesim.errors import ApiError
from kubesim.store import WatchEvent

JSON = dict[str, Any]
log = logging.getLogger("kubesim.gc")


class GarbageCollector:
    """Deletes dependents of deleted owners, finishes foreground deletions, empties namespaces."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cluster.store.add_listener(self._on_event)

    def _on_event(self, rtype: R.ResourceType, event: WatchEvent) -> None:
        meta = event.obj["metadata"]
        if event.type == "DELETED":
            self.queue.put_nowait(("orphans", meta["uid"]))
            for ref in meta.get("ownerReferences") or []:
                self.queue.put_nowait(("foreground", ref.get("uid")))
            if rtype.namespaced:
                self.queue.put_nowait(("namespace", meta.get("namespace")))
        elif meta.get("deletionTimestamp"):
            if rtype is R.NAMESPACES:
                self.queue.put_nowait(("namespace", meta["name"]))
            elif "foregroundDeletion" in (meta.get("finalizers") or []):
                self.queue.put_nowait(("foreground", meta["uid"]))

    async def run(self) -> None:
        while True:
            action, arg = await self.queue.get()
            try:
                if action == "orphans":
                    self._delete_dependents(arg, "Background")
                elif action == "foreground":
                    self._foreground(arg)
                elif action == "namespace":
                    self._namespace(arg)
            except Exception:
                log.exception("garbage collection %s %s failed", action, arg)
            if self.queue.empty():
                await asyncio.sleep(0)

    def _delete_dependents(self, uid: str, propagation: str) -> int:
        remaining = 0
        for plural, namespace, name in self.store.dependents(uid):
            rtype = self.cluster.kinds.by_plural(plural)
            obj = self.store.get(rtype, namespace, name)
            if obj is None:
                continue
            remaining += 1
            if obj["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.cluster.api.delete(
                    rtype, namespace, name, DeleteOptions(propagation=propagation)
                )
            except ApiError:
                continue
        return remaining

    def _foreground(self, uid: str | None) -> None:
        if not uid:
            return
        found = self.store.by_uid(uid)
        if found is None:
            return
        rtype, owner = found
        meta = owner["metadata"]
        if "foregroundDeletion" not in (meta.get("finalizers") or []) or not meta.get(
            "deletionTimestamp"
        ):
            return
        if self._delete_dependents(uid, "Foreground") == 0:
            self.cluster.api.finalize(rtype, owner, "foregroundDeletion")

    def _namespace(self, name: str | None) -> None:
        if not name:
            return
        ns = self.store.get(R.NAMESPACES, "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        remaining = 0
        for rtype in self.cluster.kinds.types:
            if not rtype.namespaced:
                continue
            for obj in self.store.objects(rtype, name):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self.cluster.api.delete(rtype, name, obj["metadata"]["name"], DeleteOptions())
        if remaining == 0:
            self.store.remove(R.NAMESPACES, "", name)
