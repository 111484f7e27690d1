"""One cluster watch per environment, shared by everybody who looks at it.

A per-process registry holds an `EnvironmentWatcher` per environment, reference-counted by the
consumers of this process (status pages and LiveTails). The first viewer starts it, the last
one stops it. The watcher lists, then watches, the Apollo-managed Deployments and Pods of the
namespace (one thread per kind), and a publisher thread sends the joined status to the
channel-layer group ``environment.<id>.pods`` at most every PUBLISH_INTERVAL seconds. Viewers
therefore cost no Kubernetes call: 20 pages on one environment make the calls of one.

A watch the API server ends, or answers with 410 Gone, is resumed by listing again (the list is
the truth; events missed in between cannot matter). While the cluster cannot be reached the
published status says so, and the watcher retries with a capped back-off.

With several Apollo processes (Redis channel layer) the processes that have viewers of an
environment elect one through a lease in Redis (`environments/election.py`): only the holder
watches the cluster and publishes, and the others' viewers get its messages through the group.
So the cluster is watched once per environment across all processes. A LiveTail needs the pods
in its own process (it follows replacements), so a process with a LiveTail open watches pods
whether or not it holds the lease; it publishes nothing unless it does.
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from apollo_site.ops.metrics import WATCH_RESTARTS
from apollo_site.ops.publish import publish_on
from environments import election, kube, owners
from environments.kube.labels import MANAGED_BY
from environments.live.state import build_status, load_records, running_targets
from environments.models import Environment

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KINDS = ("Deployment", "ReplicaSet", "Pod")  # ReplicaSets: whose pod is whose (owners.py)
SELECTOR = f"{MANAGED_BY}=apollo"
PUBLISH_INTERVAL = 0.25  # seconds: coalesces bursts of pod events into one message
REFRESH_SECONDS = 10.0  # republish even without events: Apollo's records change too
ELECTION_RETRY_SECONDS = 1.0  # how often a process without the lease tries to take it
PodListener = Callable[[list[Obj]], None]


def group_name(environment_id: int) -> str:
    return f"environment.{environment_id}.pods"


def _watch_seconds() -> int:
    return int(getattr(settings, "APOLLO_WATCH_SECONDS", 240))


class EnvironmentWatcher:
    """The watch threads and the publisher of one environment in this process."""

    def __init__(self, environment_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.environment_id = environment_id
        self.loop = loop
        self.objects: dict[str, dict[str, Obj]] = {kind: {} for kind in KINDS}
        self.listed: set[str] = set()
        self.errors: dict[str, str] = {}
        self.latest: Obj | None = None
        self.relists = 0
        self._listeners: list[PodListener] = []
        self._lock = threading.Lock()
        self._wanted_changed = threading.Condition(self._lock)
        self.lease = election.lease_for(environment_id)
        self.leading = self.lease is None  # alone (no Redis): always the one that watches
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._streams: dict[str, kube.WatchStream] = {}
        self._threads: list[threading.Thread] = []

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        for kind in KINDS:
            self._spawn(self._watch_kind, kind)
        self._spawn(self._publish_loop)
        if self.lease is not None:
            self._spawn(self._lead_loop)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        name = f"env-{self.environment_id}-{target.__name__}-{'-'.join(args)}"
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        with self._wanted_changed:
            self._wanted_changed.notify_all()
        self._close_streams()

    def _close_streams(self) -> None:
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.close()

    # -- election (several processes, Redis) ------------------------------------------------

    def _wanted(self) -> bool:
        """Whether this process should watch the cluster now (call with the lock held)."""
        return self.leading or bool(self._listeners)

    def _lead_loop(self) -> None:
        lease = self.lease
        assert lease is not None
        try:
            while not self.stopped:
                try:
                    if self.leading:
                        if not lease.renew():
                            self._set_leading(False)
                    elif lease.acquire():
                        self._set_leading(True)
                except Exception as exc:  # Redis unreachable: assume the lease lost
                    log.warning("lease of environment %s: %s", self.environment_id, exc)
                    if self.leading:
                        self._set_leading(False)
                interval = election.LEASE_SECONDS / 3 if self.leading else ELECTION_RETRY_SECONDS
                self._stop.wait(interval)
        finally:
            if self.leading:
                with contextlib.suppress(Exception):
                    lease.forget_state()
                    lease.release()

    def _set_leading(self, leading: bool) -> None:
        with self._wanted_changed:
            self.leading = leading
            watching = self._wanted()
            if not watching:
                self.listed.clear()  # what we saw goes stale from now on
            self._wanted_changed.notify_all()
        if leading:
            self._dirty.set()
        elif not watching:
            self._close_streams()

    def _wait_until_wanted(self) -> bool:
        with self._wanted_changed:
            self._wanted_changed.wait_for(lambda: self.stopped or self._wanted(), timeout=1.0)
            return not self.stopped and self._wanted()

    def still_wanted(self) -> bool:
        with self._lock:
            return not self.stopped and self._wanted()

    def current_state(self) -> Obj | None:
        """The latest status for a viewer that just arrived (blocking: Redis when not leading)."""
        if self.leading or self.lease is None:
            return self.latest
        return _saved_state(self.lease, self.environment_id)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float = 5) -> None:
        for thread in self._threads:
            thread.join(timeout)

    # -- listeners (LiveTail follows pods through the same watch) ---------------------------

    def add_listener(self, listener: PodListener) -> None:
        with self._wanted_changed:
            self._listeners.append(listener)
            ready = "Pod" in self.listed
            pods = list(self.objects["Pod"].values())
            self._wanted_changed.notify_all()
        if ready:
            listener(pods)

    def remove_listener(self, listener: PodListener) -> None:
        with self._lock:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)
            watching = self._wanted()
            if not watching:
                self.listed.clear()
        if not watching:
            self._close_streams()

    # -- watching ---------------------------------------------------------------------------

    def _environment(self) -> Environment | None:
        try:
            return (
                Environment.objects.select_related("cluster").filter(pk=self.environment_id).first()
            )
        finally:
            close_old_connections()

    def _watch_kind(self, kind: str) -> None:
        delay = 0.5
        while not self.stopped:
            if not self._wait_until_wanted():
                continue
            environment = self._environment()
            if environment is None:
                return
            try:
                self._list_and_watch(environment, kind)
                delay = 0.5
            except (kube.ClusterUnreachable, kube.KubeError) as exc:
                WATCH_RESTARTS.labels("live").inc()
                self._set_error(kind, str(exc))
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
            except Exception:  # a bug must not kill the page for everybody silently
                log.exception("watch of %s in environment %s failed", kind, self.environment_id)
                WATCH_RESTARTS.labels("live").inc()
                self._set_error(kind, "internal error while watching the cluster")
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _list_and_watch(self, environment: Environment, kind: str) -> None:
        cluster, namespace = environment.cluster, environment.namespace
        items, version = kube.list_objects(cluster, kind, namespace, label_selector=SELECTOR)
        with self._lock:
            self.objects[kind] = {item["metadata"]["uid"]: item for item in items}
            self.listed.add(kind)
            self.errors.pop(kind, None)
        self._changed(kind)
        stream = kube.WatchStream(
            cluster,
            kind,
            namespace,
            resource_version=version,
            timeout_seconds=_watch_seconds(),
            label_selector=SELECTOR,
        )
        with self._lock:
            self._streams[kind] = stream
        if not self.still_wanted():  # stopped, or the lease lost, while this stream opened
            stream.close()
        try:
            for event in stream.events():
                if not self.still_wanted():
                    return
                self._apply(kind, event)
        except kube.WatchExpired:
            pass  # 410 Gone: relist below
        finally:
            with self._lock:
                self._streams.pop(kind, None)
        if self.still_wanted():
            self.relists += 1  # the server ended the watch (or 410): list again
            WATCH_RESTARTS.labels("live").inc()

    def _apply(self, kind: str, event: kube.WatchEvent) -> None:
        if event.type == "BOOKMARK":
            return
        uid = (event.object.get("metadata") or {}).get("uid")
        if not uid:
            return
        with self._lock:
            if event.type == "DELETED":
                self.objects[kind].pop(uid, None)
            else:
                self.objects[kind][uid] = event.object
        self._changed(kind)

    def _set_error(self, kind: str, message: str) -> None:
        with self._lock:
            self.errors[kind] = message
        self._changed(kind)

    def _changed(self, kind: str) -> None:
        # Every kind: a pod's owner (a ReplicaSet, its Deployment) may be seen after the pod.
        self._notify_listeners()
        self._dirty.set()

    def pod_target(self, pod: Obj) -> owners.Target | None:
        """(service, group) of a pod from its owner chain as this watch sees it, or None."""
        with self._lock:
            rs_ref = owners.controller(pod, "ReplicaSet") or {}
            replica_set = self.objects["ReplicaSet"].get(str(rs_ref.get("uid") or ""))
            dep_ref = owners.controller(replica_set or {}, "Deployment") or {}
            deployment = self.objects["Deployment"].get(str(dep_ref.get("uid") or ""))
        return owners.pod_target(pod, replica_set, deployment)

    def _notify_listeners(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
            pods = list(self.objects["Pod"].values())
        for listener in listeners:
            try:
                listener(pods)
            except Exception:
                log.exception("pod listener failed")

    # -- publishing -------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        try:
            while not self.stopped:
                self._dirty.wait(REFRESH_SECONDS)
                if self.stopped:
                    return
                self._dirty.clear()
                if self.leading and (self.listed or self.errors):
                    self._publish()
                self._stop.wait(PUBLISH_INTERVAL)
        finally:
            close_old_connections()

    def snapshot(self) -> Obj | None:
        environment = self._environment()
        if environment is None:
            return None
        with self._lock:
            deployments = list(self.objects["Deployment"].values())
            replica_sets = list(self.objects["ReplicaSet"].values())
            pods = list(self.objects["Pod"].values())
            errors = dict(self.errors)
        try:
            records = load_records(environment.pk, running_targets(deployments))
        finally:
            close_old_connections()
        return build_status(
            environment=environment,
            deployments=deployments,
            pods=pods,
            records=records,
            replica_sets=replica_sets,
            reachable=not errors,
            error="; ".join(sorted(set(errors.values()))),
        )

    def _publish(self) -> None:
        try:
            state = self.snapshot()
        except Exception:
            log.exception("status of environment %s failed", self.environment_id)
            return
        if state is None:
            return
        self.latest = state
        if self.lease is not None:
            try:
                self.lease.save_state(state)
            except Exception as exc:
                log.warning("saving the status of environment %s: %s", self.environment_id, exc)
        if self.loop.is_closed():  # the event loop is gone (its server stopped): stop watching
            self.stop()
            return
        message = {"type": "environment.state", "state": state}
        publish_on(self.loop, group_name(self.environment_id), message)


class WatcherRegistry:
    """Environment id -> (watcher, number of consumers of this process using it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[EnvironmentWatcher, int]] = {}

    def acquire(self, environment_id: int) -> EnvironmentWatcher:
        """Call from the event loop's thread (a consumer's connect)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            watcher, count = self._entries.get(environment_id, (None, 0))
            if watcher is None or watcher.loop is not loop or watcher.loop.is_closed():
                if watcher is not None:
                    watcher.stop()  # left behind by an event loop that is gone (tests)
                watcher, count = EnvironmentWatcher(environment_id, loop), 0
                watcher.start()
            self._entries[environment_id] = (watcher, count + 1)
            return watcher

    def release(self, environment_id: int) -> None:
        with self._lock:
            watcher, count = self._entries.get(environment_id, (None, 0))
            if watcher is None:
                return
            if count <= 1:
                del self._entries[environment_id]
                watcher.stop()
            else:
                self._entries[environment_id] = (watcher, count - 1)

    def active(self) -> dict[int, int]:
        """Environment id -> number of users (tests and the benchmark read this)."""
        with self._lock:
            return {key: count for key, (_, count) in self._entries.items()}

    def get(self, environment_id: int) -> EnvironmentWatcher | None:
        with self._lock:
            entry = self._entries.get(environment_id)
        return entry[0] if entry else None


registry = WatcherRegistry()


def shared_state(environment_id: int) -> Obj | None:
    """The environment's latest published status, if anybody's watch has one (no cluster call).

    From this process's watcher, else from Redis when another process watches."""
    watcher = registry.get(environment_id)
    if watcher is not None:
        return watcher.current_state()
    lease = election.lease_for(environment_id)
    return None if lease is None else _saved_state(lease, environment_id)


def shared_states(environment_ids: list[int]) -> dict[int, Obj]:
    """shared_state of each environment that has one: from this process's watchers, the others
    from Redis in one round trip rather than one each."""
    states: dict[int, Obj] = {}
    elsewhere = []
    for environment_id in environment_ids:
        watcher = registry.get(environment_id)
        if watcher is None:
            elsewhere.append(environment_id)
        elif (state := watcher.current_state()) is not None:
            states[environment_id] = state
    try:
        states.update(election.load_states(elsewhere))
    except Exception as exc:
        log.warning("status of environments %s from Redis: %s", elsewhere, exc)
    return states


def _saved_state(lease: election.Lease, environment_id: int) -> Obj | None:
    """The status the watching process last kept in Redis; None if Redis cannot say."""
    try:
        return lease.load_state()
    except Exception as exc:
        log.warning("status of environment %s from Redis: %s", environment_id, exc)
        return None


def wait_for(check: Callable[[], bool], timeout: float = 10) -> bool:
    """Poll until check() is true (tests and the benchmark)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()
