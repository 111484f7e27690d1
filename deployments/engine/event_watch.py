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
- The watch closes a few seconds after its last subscriber leaves (the follower's close,
  whatever ended it: a verdict, a failure, a handover), unless another joins meanwhile
  (namespace_watch.py). A subscriber that fails only stops reading its queue:
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

from deployments.engine.namespace_watch import NamespaceWatch
from environments import kube
from environments.models import Cluster

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
READY_SECONDS = 5.0  # how long subscribing waits for the watch's starting point
Item = tuple[str, Any]  # what a follower's queue carries: ("event"|"list", ("Event", ...))


# The mark put in a feed's queue when a newer rollout of the same Deployment subscribes.
SUCCESSOR = "successor"


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


class _NamespaceEvents(NamespaceWatch[EventFeed]):
    """The shared watch of one namespace's Events (the loop: namespace_watch.py)."""

    def __init__(self, cluster: Cluster, namespace: str, key: tuple[int, str, str]):
        super().__init__(
            cluster,
            namespace,
            "Event",
            key,
            registry=_registry,
            registry_lock=_registry_lock,
            name=f"events-{namespace}",
        )
        self.ready = threading.Event()  # started_from is known (or could not be read)
        self.started_from = ""

    @property
    def feeds(self) -> list[EventFeed]:
        return self.members

    def join_feed(self, feed: EventFeed) -> None:
        """Serve `feed` from now on. The feeds of the same Deployment already here (an
        earlier rollout, still taking its last Events after its verdict) get a SUCCESSOR
        mark first: what follows it in their queue may be the new rollout's, whose apply
        comes after this subscription."""
        feed._watch = self
        with self._lock:
            for other in self.members:
                if other.name == feed.name:
                    other.queue.put((SUCCESSOR, None))
            self.members.append(feed)

    def run(self) -> None:
        try:
            self.started_from = kube.collection_version(self.cluster, "Event", self.namespace)
        except Exception as exc:  # (a watch thread must never die silently)
            logger.debug("Events of %s: no starting point (%s)", self.namespace, exc)
        finally:
            self.ready.set()
        self.follow_from(self.started_from)

    def tell_unreachable(self, message: str) -> None:
        # Each follower hears of it, as from its own watches (the unreachable limit).
        with self._lock:
            feeds = list(self.members)
        for feed in feeds:
            feed.queue.put(("unreachable", message))

    def relist(self) -> str:
        items, version = kube.list_objects(self.cluster, "Event", self.namespace)
        with self._lock:
            feeds = list(self.members)
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

    def dispatch(self, event: kube.WatchEvent) -> None:
        if event.type == "DELETED":
            return  # (an Event expiring: nothing to record)
        with self._lock:
            feeds = [feed for feed in self.members if involves(event.object, feed.name)]
        for feed in feeds:
            feed.queue.put(("event", ("Event", event)))
