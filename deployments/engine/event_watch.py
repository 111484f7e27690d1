"""One Event watch per namespace and cluster in a worker process, shared by its rollouts.

A rollout's timeline records the Events of its Deployment, ReplicaSets and pods, and a failure
is explained by them. Each rollout watching its namespace's Events itself made every rollout
parse every other rollout's Events: with 100 rollouts in one namespace, 100 watches each
decoding the whole namespace's stream. Here one thread per (cluster, namespace) watches the
Events once and hands each to the rollouts it involves (`involves`), in their own queues.

- A rollout subscribes *before* its apply: `subscribe` returns once the shared watch knows
  where it begins (the collection's resourceVersion, read when it starts), so every Event the
  apply causes comes after it. Where the watch could not tell (the cluster did not answer),
  the feed is not `covered` and the follower lists the namespace's Events once (`backfill`).
- The watch closes when its last subscriber leaves (the follower's close, whatever ended it:
  a verdict, a failure, a handover). A subscriber that fails only stops reading its queue:
  nothing it does reaches the shared thread, which goes on for the others.
- A failed request is told to every subscriber ("unreachable", as their own watches do).
- A dropped watch resumes from the last resourceVersion seen; an expired one (410) lists the
  namespace's Events once for all subscribers, each of which keeps what involves it (the
  follower records an Event once per count, so one seen twice is not recorded twice).
"""

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from apollo_site.ops.metrics import WATCH_RESTARTS
from environments import kube
from environments.models import Cluster

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
WATCH_SECONDS = 30
READY_SECONDS = 5.0  # how long subscribing waits for the watch's starting point
Item = tuple[str, Any]  # what a follower's queue carries: ("event"|"list", ("Event", ...))


def involves(event: Obj, name: str) -> bool:
    """Whether an Event is about the Deployment `name`, one of its ReplicaSets or their pods
    (named after it, as the deployment controller names them)."""
    involved = event.get("involvedObject") or {}
    kind, other = involved.get("kind"), str(involved.get("name", ""))
    return (kind == "Deployment" and other == name) or (
        kind in ("ReplicaSet", "Pod") and other.startswith(f"{name}-")
    )


@dataclass(eq=False)
class EventFeed:
    """One rollout's share of its namespace's Event watch: the Events that involve `name`,
    put in `queue` (which the follower reads with its other watches)."""

    name: str
    queue: "queue.Queue[Item]" = field(default_factory=queue.Queue)
    covered: bool = False  # the shared watch began before this feed was subscribed
    _watch: "_NamespaceEvents | None" = None

    def close(self) -> None:
        """Leave the shared watch (the last one to leave closes it). Idempotent."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.leave(self)

    def backfill(self) -> None:
        """List the namespace's Events once, in a thread of its own, for a feed that may have
        missed some (not covered: a resumed rollout, or a watch that could not start)."""
        watch = self._watch
        if watch is not None:
            threading.Thread(
                target=watch.list_for, args=(self,), daemon=True, name="events-backfill"
            ).start()


_registry: dict[tuple[int, str, str], "_NamespaceEvents"] = {}
_registry_lock = threading.Lock()


def subscribe(cluster: Cluster, namespace: str, name: str) -> EventFeed:
    """A feed of the Events involving Deployment `name`, from now on (see `covered`)."""
    # Keyed by the connection's settings: after a token rotation, new rollouts watch with the
    # new token (the old watch serves its followers until they leave).
    key = (*kube.connection_key(cluster), namespace)
    feed = EventFeed(name=name)
    with _registry_lock:
        watch = _registry.get(key)
        if watch is None:
            watch = _registry[key] = _NamespaceEvents(cluster, namespace, key)
            watch.start()
        watch.join_feed(feed)
    feed.covered = watch.ready.wait(READY_SECONDS) and watch.started_from != ""
    return feed


def watching(cluster: Cluster, namespace: str) -> int:
    """How many feeds the namespace's shared watch serves (0: none open), for tests."""
    with _registry_lock:
        watch = _registry.get((*kube.connection_key(cluster), namespace))
        return len(watch.feeds) if watch is not None else 0


class _NamespaceEvents(threading.Thread):
    """The shared watch of one namespace's Events."""

    def __init__(self, cluster: Cluster, namespace: str, key: tuple[int, str, str]):
        super().__init__(daemon=True, name=f"events-{namespace}")
        self.cluster, self.namespace, self.key = cluster, namespace, key
        self.feeds: list[EventFeed] = []
        self.ready = threading.Event()  # started_from is known (or could not be read)
        self.started_from = ""
        self._stop = threading.Event()
        self._stream: kube.WatchStream | None = None
        self._lock = threading.Lock()
        self.backoff = 0.2

    # -- subscribers (called with _registry_lock held, or from the feed) ---------------------

    def join_feed(self, feed: EventFeed) -> None:
        feed._watch = self
        with self._lock:
            self.feeds.append(feed)

    def leave(self, feed: EventFeed) -> None:
        with _registry_lock:
            with self._lock:
                if feed in self.feeds:
                    self.feeds.remove(feed)
                last = not self.feeds
            if last and _registry.get(self.key) is self:
                del _registry[self.key]
        if last:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()  # now, not at the next Event (a quiet namespace sends none)

    # -- the watch -----------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.started_from = kube.collection_version(self.cluster, "Event", self.namespace)
        except Exception as exc:  # (a watch thread must never die silently)
            logger.debug("Events of %s: no starting point (%s)", self.namespace, exc)
        finally:
            self.ready.set()
        version = self.started_from
        while not self._stop.is_set():
            try:
                version = self._watch_from(version) if version else self._relist()
            except kube.WatchExpired:
                WATCH_RESTARTS.labels("rollout").inc()
                version = ""
            except Exception as exc:
                if self._stop.is_set():
                    return  # its stream was closed under it: the end, not a failure
                if not isinstance(exc, kube.ClusterUnreachable | kube.KubeError):
                    logger.exception("the Event watch of %s failed", self.namespace)
                # Each follower hears of it, as from its own watches (the unreachable limit).
                with self._lock:
                    feeds = list(self.feeds)
                for feed in feeds:
                    feed.queue.put(("unreachable", str(exc)))
                WATCH_RESTARTS.labels("rollout").inc()
                self._stop.wait(self.backoff)
                self.backoff = min(self.backoff * 2, 5.0)

    def _relist(self) -> str:
        items, version = kube.list_objects(self.cluster, "Event", self.namespace)
        self.backoff = 0.2
        with self._lock:
            feeds = list(self.feeds)
        for feed in feeds:
            self._put_list(feed, items)
        return version

    def list_for(self, feed: EventFeed) -> None:
        try:
            items, _ = kube.list_objects(self.cluster, "Event", self.namespace)
        except (kube.ClusterUnreachable, kube.KubeError) as exc:
            feed.queue.put(("unreachable", str(exc)))  # (the Events are lost: not the verdict)
            return
        self._put_list(feed, items)

    @staticmethod
    def _put_list(feed: EventFeed, items: list[Obj]) -> None:
        mine = [item for item in items if involves(item, feed.name)]
        if mine:
            feed.queue.put(("list", ("Event", mine)))

    def _watch_from(self, version: str) -> str:
        stream = kube.WatchStream(
            self.cluster,
            "Event",
            self.namespace,
            resource_version=version,
            timeout_seconds=WATCH_SECONDS,
        )
        with self._lock:
            self._stream = stream
        if self._stop.is_set():  # stopped before stop() could see this stream
            stream.close()
            return version
        for event in stream.events():
            version = event.object.get("metadata", {}).get("resourceVersion", version)
            self.backoff = 0.2
            if event.type in ("BOOKMARK", "DELETED"):
                continue
            with self._lock:
                feeds = [feed for feed in self.feeds if involves(event.object, feed.name)]
            for feed in feeds:
                feed.queue.put(("event", ("Event", event)))
            if self._stop.is_set():
                break
        return version
