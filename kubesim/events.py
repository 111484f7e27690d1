"""core/v1 Event recording with the same de-duplication (count, lastTimestamp) as client-go."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from kubesim import resources as R
from kubesim.meta import iso, new_uid, now_iso
from kubesim.store import Store

JSON = dict[str, Any]
NODE_NAME = "kubesim-node-1"


class EventRecorder:
    def __init__(self, store: Store, *, max_events: int = 20000) -> None:
        self.store = store
        self.max_events = max_events
        self._index: dict[tuple[str, str, str, str, str], tuple[str, str]] = {}
        self._order: deque[tuple[str, str]] = deque()
        self._serial = 0

    def record(
        self,
        involved: JSON,
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        component: str = "kubelet",
        field_path: str = "",
    ) -> None:
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), field_path, reason, message, type_)
        existing = self._index.get(key)
        if existing is not None:
            event = self.store.get(R.EVENTS, *existing)
            if event is not None:
                updated = {**event, "metadata": dict(event["metadata"])}
                updated["count"] = int(event.get("count", 1)) + 1
                updated["lastTimestamp"] = now_iso()
                self.store.put(R.EVENTS, updated)
                return
        self._create(involved, key, namespace, field_path, component)

    def _create(
        self,
        involved: JSON,
        key: tuple[str, str, str, str, str],
        namespace: str,
        field_path: str,
        component: str,
    ) -> None:
        meta = involved["metadata"]
        now = time.time()
        self._serial += 1
        # Like client-go: involved name + a hex timestamp; the serial keeps names unique.
        name = f"{meta['name']}.{int(now * 1e9) + self._serial:x}"[:253]
        involved_ref: JSON = {
            "kind": involved.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": involved.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved_ref["fieldPath"] = field_path
        source: JSON = {"component": component}
        if component == "kubelet":
            source["host"] = NODE_NAME
        event: JSON = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": new_uid(),
                "creationTimestamp": iso(now),
            },
            "involvedObject": involved_ref,
            "reason": key[2],
            "message": key[3],
            "source": source,
            "firstTimestamp": iso(now),
            "lastTimestamp": iso(now),
            "count": 1,
            "type": key[4],
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": source.get("host", ""),
        }
        self.store.put(R.EVENTS, event)
        self._index[key] = (namespace, name)
        self._order.append((namespace, name))
        self._prune()

    def _prune(self) -> None:
        # Real events expire after an hour; a bound keeps long demos from growing forever.
        while len(self._order) > self.max_events:
            namespace, name = self._order.popleft()
            self.store.remove(R.EVENTS, namespace, name)
