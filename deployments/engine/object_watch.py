"""One Deployment watch and one Pod watch per namespace and cluster in a worker process, shared
by the rollouts it follows there (as event_watch.py shares the Events).

Each rollout used to watch its Deployment and its pods itself: two threads and two connections
per rollout, each listing before it watched. Following 100 rollouts, 200 threads took turns
with the followers for the interpreter, and the event that ended a rollout waited its turn
(#16: up to a second). Here one thread per (cluster, namespace, kind) lists the namespace's
objects once, keeps them by name, then watches; each subscriber (a follower) says which objects
it follows (`wants`) and gets, in its queue:

- when it subscribes, the kept objects it follows ("list", as its own list used to be), before
  any change that comes after;
- each change of them ("event");
- after a watch that expired (410), the namespace listed again: its objects again ("list": the
  follower replaces what it had); a dropped watch resumes from the last resourceVersion seen;
- a failed request ("unreachable", as from its own watches: the unreachable limit).

The kept objects may be a moment behind the cluster (what the watch has not delivered yet):
the follower reads its Deployment itself first and never goes back to an older generation of
it (rollout.py). The verdict's snapshot of the environment is taken from the kept Deployments
(`kept`): the watch delivered the change that decided it. The watch closes a few seconds
after its last subscriber leaves, unless another joins meanwhile (namespace_watch.py); a
subscriber that fails only stops reading its queue: nothing it does reaches the shared thread.
"""

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployments.engine.namespace_watch import NamespaceWatch
from environments import kube
from environments.models import Cluster

Obj = dict[str, Any]
KINDS = ("Deployment", "Pod")


def named(name: str) -> Callable[[Obj], bool]:
    """The object called `name` (a Deployment)."""
    return lambda obj: (obj.get("metadata") or {}).get("name") == name


def labelled(labels: dict[str, str]) -> Callable[[Obj], bool]:
    """The objects that carry every one of `labels` (a label selector of equalities)."""
    wanted = labels.items()

    def match(obj: Obj) -> bool:
        have = (obj.get("metadata") or {}).get("labels") or {}
        return all(have.get(key) == value for key, value in wanted)

    return match


@dataclass(eq=False)
class Subscription:
    """One follower's share of a namespace's watch of one kind."""

    kind: str
    wants: Callable[[Obj], bool]
    queue: "queue.Queue[tuple[str, Any]]"
    _watch: "_NamespaceObjects | None" = field(default=None, repr=False)

    def close(self) -> None:
        """Leave the shared watch (the last one to leave closes it). Idempotent."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.leave(self)


_registry: dict[tuple[Any, ...], "_NamespaceObjects"] = {}
_registry_lock = threading.Lock()


def subscribe(
    cluster: Cluster,
    namespace: str,
    kind: str,
    wants: Callable[[Obj], bool],
    into: "queue.Queue[tuple[str, Any]]",
) -> Subscription:
    """Changes of the `kind` objects of `namespace` that `wants` accepts, put in `into`: first
    those kept now (once the watch has listed), then every change."""
    # Keyed by the connection's settings, as the Event watch (a rotated token: a new watch).
    key = (*kube.connection_key(cluster), namespace, kind)
    subscription = Subscription(kind=kind, wants=wants, queue=into)
    with _registry_lock:
        watch = _registry.get(key)
        if watch is None:
            watch = _registry[key] = _NamespaceObjects(cluster, namespace, kind, key)
            watch.start()
        watch.join_subscription(subscription)
    return subscription


def kept(cluster: Cluster, namespace: str, kind: str) -> list[Obj] | None:
    """The namespace's `kind` objects as its shared watch keeps them now, or None when there
    is no such watch, it has not listed yet, or its last request failed (they may be old)."""
    with _registry_lock:
        watch = _registry.get((*kube.connection_key(cluster), namespace, kind))
    if watch is None:
        return None
    with watch._lock:
        if watch.kept is None or not watch.answering:
            return None
        return list(watch.kept.values())


def watching(cluster: Cluster, namespace: str, kind: str) -> int:
    """How many subscriptions the namespace's shared watch of `kind` serves (0: none open)."""
    with _registry_lock:
        watch = _registry.get((*kube.connection_key(cluster), namespace, kind))
        return len(watch.subscriptions) if watch is not None else 0


class _NamespaceObjects(NamespaceWatch[Subscription]):
    """The shared watch of one namespace's objects of one kind, and the objects as last seen
    (the loop: namespace_watch.py)."""

    def __init__(self, cluster: Cluster, namespace: str, kind: str, key: tuple[Any, ...]):
        super().__init__(
            cluster,
            namespace,
            kind,
            key,
            registry=_registry,
            registry_lock=_registry_lock,
            name=f"watch-{kind}-{namespace}",
        )
        self.kept: dict[str, Obj] | None = None  # None: not listed yet (or since a 410)
        self.answering = False  # its last request answered (kept is up to date)

    @property
    def subscriptions(self) -> list[Subscription]:
        return self.members

    def join_subscription(self, subscription: Subscription) -> None:
        subscription._watch = self
        with self._lock:
            self.members.append(subscription)
            if self.kept is not None:  # (else the list to come gives it its objects)
                self._put_list(subscription)

    def _put_list(self, subscription: Subscription) -> None:
        assert self.kept is not None
        mine = [obj for obj in self.kept.values() if subscription.wants(obj)]
        subscription.queue.put(("list", (self.kind, mine)))

    def run(self) -> None:
        self.follow_from("")

    def expired(self) -> None:
        self.answering = False

    def tell_unreachable(self, message: str) -> None:
        with self._lock:
            self.answering = False
            for subscription in self.members:
                subscription.queue.put(("unreachable", message))

    def relist(self) -> str:
        items, version = kube.list_objects(self.cluster, self.kind, self.namespace)
        with self._lock:
            self.kept = {item["metadata"]["name"]: item for item in items}
            self.answering = True
            for subscription in self.members:
                self._put_list(subscription)
        return version

    def dispatch(self, event: kube.WatchEvent) -> None:
        name = str((event.object.get("metadata") or {}).get("name", ""))
        with self._lock:
            self.answering = True
            if self.kept is not None:
                if event.type == "DELETED":
                    self.kept.pop(name, None)
                else:
                    self.kept[name] = event.object
            for subscription in self.members:
                if subscription.wants(event.object):
                    subscription.queue.put(("event", (self.kind, event)))
