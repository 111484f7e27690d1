"""In-memory object store with a global resourceVersion and watch fan-out.

Objects are plain JSON dicts. A stored dict is never mutated: writers build a new dict
(copying what they change) and hand it over, so readers and watch queues can share it.
Each entry caches its serialised JSON, which keeps large list responses cheap.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubesim.errors import gone
from kubesim.label_selectors import ObjectFilter
from kubesim.meta import owner_uids
from kubesim.resources import ResourceType

JSON = dict[str, Any]
Key = tuple[str, str, str]  # (plural, namespace, name)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Entry:
    obj: JSON
    _raw: bytes | None = None

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = dumps(self.obj)
        return self._raw


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    obj: JSON
    prev: JSON | None
    rv: int
    _raw: bytes | None = None

    def raw_object(self) -> bytes:
        # Serialised once, shared by every watcher that receives this event.
        if self._raw is None:
            self._raw = dumps(self.obj)
        return self._raw


@dataclass(eq=False)
class Watcher:
    rtype: ResourceType
    namespace: str | None
    filter: ObjectFilter | None
    limit: int
    queue: asyncio.Queue[tuple[str, WatchEvent] | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def _in_scope(self, obj: JSON | None) -> bool:
        if obj is None:
            return False
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.filter is None or self.filter(obj)

    def event_type(self, event: WatchEvent) -> str | None:
        """Translate a store event for this watcher's selection (enter → ADDED, leave → DELETED)."""
        now_in = self._in_scope(event.obj)
        if event.type == "ADDED":
            return "ADDED" if now_in else None
        if event.type == "DELETED":
            return "DELETED" if now_in or self._in_scope(event.prev) else None
        was_in = self._in_scope(event.prev)
        if now_in and was_in:
            return "MODIFIED"
        if now_in:
            return "ADDED"
        return "DELETED" if was_in else None

    def offer(self, event: WatchEvent) -> None:
        if self.overflowed:
            return
        kind = self.event_type(event)
        if kind is None:
            return
        if self.queue.qsize() >= self.limit:
            # Like the API server's terminated slow watchers: the client must re-list and resume.
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait((kind, event))

    def close(self) -> None:
        self.queue.put_nowait(None)


Listener = Callable[[ResourceType, WatchEvent], None]


def initial_events_end_bookmark(rtype: ResourceType, rv: int) -> WatchEvent:
    """The BOOKMARK that ends a streaming list's initial events, at the state's version."""
    annotations = {"k8s.io/initial-events-end": "true"}
    obj = {
        "kind": rtype.kind,
        "apiVersion": rtype.api_version,
        "metadata": {"resourceVersion": str(rv), "annotations": annotations},
    }
    return WatchEvent("BOOKMARK", obj, None, rv)


class Store:
    def __init__(self, *, history_size: int = 5000, watch_queue_size: int = 10000) -> None:
        self._rv = 1
        self._data: dict[str, dict[str, dict[str, Entry]]] = {}
        self._history: dict[str, deque[WatchEvent]] = {}
        self._compacted: dict[str, int] = {}
        self._watchers: dict[str, set[Watcher]] = {}
        self._owners: dict[str, set[Key]] = {}
        # uid -> (type, namespace, name) of every stored object, as the garbage collector
        # finds an owner by the uid an ownerReference names, whatever its kind.
        self._by_uid: dict[str, tuple[ResourceType, str, str]] = {}
        self._listeners: list[Listener] = []
        self.history_size = history_size
        self.watch_queue_size = watch_queue_size
        # The next N watches that resume from a resourceVersion answer 410 Expired, as when
        # etcd compacted that version between a client's list and its watch (control API).
        self.expire_next = 0

    # -- reading -----------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, rtype: ResourceType, namespace: str, name: str) -> JSON | None:
        entry = self._data.get(rtype.plural, {}).get(namespace, {}).get(name)
        return entry.obj if entry else None

    def entries(self, rtype: ResourceType, namespace: str | None = None) -> Iterator[Entry]:
        """Entries sorted by (namespace, name), the order etcd returns keys in."""
        by_ns = self._data.get(rtype.plural, {})
        namespaces = [namespace] if namespace is not None else sorted(by_ns)
        for ns in namespaces:
            items = by_ns.get(ns, {})
            for name in sorted(items):
                yield items[name]

    def objects(self, rtype: ResourceType, namespace: str | None = None) -> list[JSON]:
        return [e.obj for e in self.entries(rtype, namespace)]

    def count(self, rtype: ResourceType) -> int:
        return sum(len(items) for items in self._data.get(rtype.plural, {}).values())

    def dependents(self, uid: str) -> list[Key]:
        return sorted(self._owners.get(uid, ()))

    def by_uid(self, uid: str) -> tuple[ResourceType, JSON] | None:
        """The stored object with this uid and its type, of any kind."""
        found = self._by_uid.get(uid)
        if found is None:
            return None
        rtype, namespace, name = found
        obj = self.get(rtype, namespace, name)
        return (rtype, obj) if obj is not None else None

    # -- writing -----------------------------------------------------------------------------

    def _bump(self, obj: JSON) -> int:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        return self._rv

    def _index_owners(self, rtype: ResourceType, obj: JSON, add: bool) -> None:
        meta = obj["metadata"]
        key = (rtype.plural, meta.get("namespace", ""), meta["name"])
        for uid in owner_uids(obj):
            if add:
                self._owners.setdefault(uid, set()).add(key)
            else:
                keys = self._owners.get(uid)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._owners[uid]

    def put(self, rtype: ResourceType, obj: JSON) -> JSON:
        """Create or replace `obj` (the caller gives up ownership of the dict)."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "") if rtype.namespaced else ""
        items = self._data.setdefault(rtype.plural, {}).setdefault(namespace, {})
        previous = items.get(meta["name"])
        rv = self._bump(obj)
        if previous is not None:
            self._index_owners(rtype, previous.obj, add=False)
        self._index_owners(rtype, obj, add=True)
        if meta.get("uid"):
            self._by_uid[meta["uid"]] = (rtype, namespace, meta["name"])
        items[meta["name"]] = Entry(obj)
        kind = "MODIFIED" if previous is not None else "ADDED"
        self._emit(rtype, WatchEvent(kind, obj, previous.obj if previous else None, rv))
        return obj

    def remove(self, rtype: ResourceType, namespace: str, name: str) -> JSON | None:
        items = self._data.get(rtype.plural, {}).get(namespace if rtype.namespaced else "", {})
        entry = items.pop(name, None)
        if entry is None:
            return None
        self._index_owners(rtype, entry.obj, add=False)
        self._by_uid.pop(entry.obj["metadata"].get("uid", ""), None)
        # The DELETED event carries the object at a new resourceVersion, as the real server does.
        final = {**entry.obj, "metadata": dict(entry.obj["metadata"])}
        rv = self._bump(final)
        self._emit(rtype, WatchEvent("DELETED", final, entry.obj, rv))
        return final

    def _emit(self, rtype: ResourceType, event: WatchEvent) -> None:
        history = self._history.setdefault(rtype.plural, deque())
        history.append(event)
        while len(history) > self.history_size:
            self._compacted[rtype.plural] = history.popleft().rv
        for watcher in list(self._watchers.get(rtype.plural, ())):
            watcher.offer(event)
        for listener in self._listeners:
            listener(rtype, event)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- watching ----------------------------------------------------------------------------

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        object_filter: ObjectFilter | None,
        since: int | None,
        *,
        initial_events: bool = True,
        initial_events_end: bool = False,
    ) -> Watcher:
        """Register a watcher. since=None: synthetic ADDED for current objects, then live.

        initial_events=False with since=None starts at the current state without them;
        initial_events_end queues, right after the initial events and before any change, the
        BOOKMARK that ends them (the streaming list), carrying the state's resourceVersion.
        Raises ApiError 410 (Expired) when events after `since` were already compacted away.
        """
        watcher = Watcher(rtype, namespace, object_filter, self.watch_queue_size)
        backlog: list[tuple[str, WatchEvent]] = []
        if since is None:
            for entry in self.entries(rtype, namespace) if initial_events else ():
                event = WatchEvent("ADDED", entry.obj, None, 0, entry._raw)
                if watcher.event_type(event):
                    backlog.append(("ADDED", event))
        else:
            compacted = self._compacted.get(rtype.plural, 0)
            if self.expire_next > 0:
                self.expire_next -= 1
                compacted = max(compacted, since + 1)
            if since < compacted:
                raise gone(f"too old resource version: {since} ({compacted + 1})")
            for event in self._history.get(rtype.plural, ()):
                kind = watcher.event_type(event) if event.rv > since else None
                if kind:
                    backlog.append((kind, event))
        if initial_events_end:
            backlog.append(("BOOKMARK", initial_events_end_bookmark(rtype, self._rv)))
        watcher.limit += len(backlog)
        for item in backlog:
            watcher.queue.put_nowait(item)
        self._watchers.setdefault(rtype.plural, set()).add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.rtype.plural, set()).discard(watcher)

    def all_watchers(self) -> list[Watcher]:
        return [w for watchers in self._watchers.values() for w in watchers]
