"""A tiny work queue: de-duplicated keys, delayed re-queues, one worker task per controller."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubesim.cluster import Cluster

Key = tuple[str, str]  # (namespace, name)
log = logging.getLogger("kubesim.controllers")


class Controller:
    name = "controller"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self._dirty: dict[Key, None] = {}
        self._wakeup = asyncio.Event()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def enqueue(self, key: Key) -> None:
        self._dirty[key] = None
        self._wakeup.set()

    def enqueue_after(self, key: Key, delay: float) -> None:
        """Re-check `key` later (progress deadlines, minReadySeconds); the earliest timer wins."""
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + max(delay, 0.0)
        if existing is not None and existing.when() <= when:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch = self.order(list(self._dirty))
            self._dirty.clear()
            for index, key in enumerate(batch):
                try:
                    self.sync(*key)
                except Exception:  # a broken object must not stop the controller
                    log.exception("%s failed to sync %s", self.name, key)
                if index % 50 == 49:
                    # Let HTTP handlers run during large batches (e.g. 500 deployments at once).
                    await asyncio.sleep(0)

    def order(self, batch: list[Key]) -> list[Key]:
        return batch

    def sync(self, namespace: str, name: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


def controller_owner(obj: dict[str, Any], kind: str) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return str(ref.get("name"))
    return None
