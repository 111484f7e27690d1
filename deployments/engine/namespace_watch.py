"""The thread that watches one kind of a namespace for the rollouts a worker follows there,
shared by event_watch.py (the Events) and object_watch.py (the Deployments and the Pods).

What they share is the loop: list, then watch from the list's resourceVersion; a watch that
ends (its timeout) resumes from the last resourceVersion seen; one that expired (410) lists
again; a failed request is told to every member, then retried after a backoff (0.2 s doubling
to 5 s, back to 0.2 s at the next answer); the thread ends LINGER_SECONDS after its last member
left if none joined meanwhile, its stream closed at once (a quiet namespace sends nothing that
would wake it). The linger is for the next rollout in the namespace (a group's, a sequence of
deploys): it joins a watch that is up, with its objects kept, instead of opening three new
connections and listing the namespace again before its first apply and its follow. What each does
with a list and a change (whom it hands them to) is its own: `relist`, `dispatch`,
`tell_unreachable`, `expired`.
"""

import logging
import threading
import time
import weakref
from typing import Any, Generic, TypeVar

from apollo_site.ops.metrics import WATCH_RESTARTS
from environments import kube
from environments.models import Cluster

logger = logging.getLogger(__name__)
WATCH_SECONDS = 30
LINGER_SECONDS = 3.0  # how long a watch with no member stays open for the next one
M = TypeVar("M")  # a member: an Event feed, an object subscription
_open: "weakref.WeakSet[NamespaceWatch[Any]]" = weakref.WeakSet()  # every watch not closed
_open_lock = threading.Lock()


def close_unused(*, wait: float = 0.0) -> int:
    """Close now the watches that have no member (lingering for the next rollout), rather
    than at the end of their linger: at a worker's end, and after each test (a test's
    lingering watches must not take the next one's injected faults). How many were closed.

    wait: how long, in all, to wait for the closed watches' threads to end. A worker waits
    before its process exits: a watch's thread, woken by its stream's close, may otherwise
    still be in OpenSSL (reading its TLS connection's end) while the exiting process runs
    OpenSSL's cleanup: the likely cause of a worker sent SIGTERM mid-rollout aborting
    (SIGABRT) at its exit: 3 times in 57 runs of its test file on the real control plane
    (2026-12), and in none of 49 runs since."""
    with _open_lock:
        watches = list(_open)
    closed = [watch for watch in watches if watch._close_if_unused(None)]
    deadline = time.monotonic() + wait
    for watch in closed:
        left = deadline - time.monotonic()
        if left > 0 and watch.ident is not None:  # (started: a thread not started has none)
            watch.join(left)
    return len(closed)


class NamespaceWatch(threading.Thread, Generic[M]):
    """The shared watch of one namespace's objects of one kind, registered under `key` in
    `registry` (its module's, guarded by `registry_lock`) while it has members."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        kind: str,
        key: tuple[Any, ...],
        *,
        registry: dict[tuple[Any, ...], Any],
        registry_lock: threading.Lock,
        name: str,
    ):
        super().__init__(daemon=True, name=name)
        self.cluster, self.namespace, self.kind, self.key = cluster, namespace, kind, key
        self.registry, self.registry_lock = registry, registry_lock
        self.members: list[M] = []
        # (not `_stop`: threading.Thread has a method of that name, which is_alive() and join()
        # call once the thread has ended)
        self._stopping = threading.Event()
        self._stream: kube.WatchStream | None = None
        self._lock = threading.Lock()  # members, what the subclass keeps, and its queues
        self.backoff = 0.2
        self._emptied = 0  # how many times its last member left (the linger's generation)
        with _open_lock:
            _open.add(self)

    # -- members -------------------------------------------------------------------------

    def add(self, member: M) -> None:
        with self._lock:
            self.members.append(member)

    def leave(self, member: M) -> None:
        """Remove `member`; when it was the last, the watch closes (and is unregistered)
        LINGER_SECONDS later unless another joins meanwhile."""
        with self._lock:
            if member not in self.members:
                return  # (left already: leaving is idempotent)
            self.members.remove(member)
            if self.members:
                return
            self._emptied += 1
            emptied = self._emptied
        closing = threading.Timer(LINGER_SECONDS, self._close_if_unused, args=(emptied,))
        closing.daemon = True
        closing.name = f"{self.name}-linger"
        closing.start()

    def _close_if_unused(self, emptied: int | None) -> bool:
        # Under the registry's lock: a subscriber finds the watch registered and joins it (then
        # it stays open), or finds it gone and opens a new one; never a closing one.
        with self.registry_lock:
            with self._lock:
                if self.members or self._stopping.is_set():
                    return False
                if emptied is not None and self._emptied != emptied:
                    return False  # joined since and left again: that leave's timer decides
            if self.registry.get(self.key) is self:
                del self.registry[self.key]
        self.stop()
        return True

    def stop(self) -> None:
        self._stopping.set()
        with _open_lock:
            _open.discard(self)
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()  # now, not at the next change (a quiet namespace sends none)

    # -- what each kind of shared watch does -----------------------------------------------

    def relist(self) -> str:
        """List the namespace, hand the list to the members; the list's resourceVersion."""
        raise NotImplementedError

    def dispatch(self, event: kube.WatchEvent) -> None:
        """Hand one change (not a BOOKMARK) to the members it concerns."""
        raise NotImplementedError

    def tell_unreachable(self, message: str) -> None:
        """Tell every member that a request failed (as their own watches would)."""
        raise NotImplementedError

    def expired(self) -> None:
        """The watch expired (410): what was kept may be old until the list that follows."""

    # -- the loop --------------------------------------------------------------------------

    def follow_from(self, version: str) -> None:
        """Watch (or list first, when `version` is "") until the last member leaves."""
        while not self._stopping.is_set():
            try:
                version = self._watch_from(version) if version else self._answered(self.relist())
            except kube.WatchExpired:
                self.expired()
                WATCH_RESTARTS.labels("rollout").inc()
                version = ""
            except Exception as exc:
                if self._stopping.is_set():
                    return  # its stream was closed under it: the end, not a failure
                if not isinstance(exc, kube.ClusterUnreachable | kube.KubeError):
                    logger.exception("the %s watch of %s failed", self.kind, self.namespace)
                self.tell_unreachable(str(exc))
                WATCH_RESTARTS.labels("rollout").inc()
                self._stopping.wait(self.backoff)
                self.backoff = min(self.backoff * 2, 5.0)

    def _answered(self, version: str) -> str:
        self.backoff = 0.2
        return version

    def _watch_from(self, version: str) -> str:
        stream = kube.WatchStream(
            self.cluster,
            self.kind,
            self.namespace,
            resource_version=version,
            timeout_seconds=WATCH_SECONDS,
        )
        with self._lock:
            self._stream = stream
        if self._stopping.is_set():  # stopped before stop() could see this stream
            stream.close()
            return version
        for event in stream.events():
            version = event.object.get("metadata", {}).get("resourceVersion", version)
            self.backoff = 0.2
            if event.type != "BOOKMARK":
                self.dispatch(event)
            if self._stopping.is_set():
                break
        return version
