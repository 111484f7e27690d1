"""Following one rollout with watches until the health rules say DONE or FAILED.

Two watcher threads (the Deployment, and the pods of the new version) feed one queue; the
follower re-assesses on every event. Nothing sleeps in a polling loop: the queue wait is
bounded only so that deadlines, cancellation and the lease are checked while quiet.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployments import health
from deployments.rendering import LABEL_SHA
from environments import kube
from environments.models import Cluster

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
WATCH_SECONDS = 30


@dataclass
class Observation:
    deployment: Obj | None = None
    pods: dict[str, Obj] = field(default_factory=dict)
    unreachable_since: float | None = None
    unreachable_reason: str = ""


@dataclass(frozen=True)
class RolloutResult:
    state: str  # done, failed, interrupted
    reason: str


class _Watcher(threading.Thread):
    """Lists, then watches one kind of object, relisting on 410 and retrying when unreachable."""

    def __init__(self, *, cluster: Cluster, kind: str, namespace: str,
                 selectors: dict[str, str], events: "queue.Queue[tuple[str, Any]]",
                 stop: threading.Event) -> None:  # fmt: skip
        super().__init__(daemon=True, name=f"watch-{kind}")
        self.cluster, self.kind, self.namespace = cluster, kind, namespace
        self.selectors, self.events, self.stop = selectors, events, stop
        self._stream: kube.WatchStream | None = None
        # Doubles per failure in a row; back to the start once the cluster answers a list, so
        # that occasional 5xx over a long rollout do not add up to waits of seconds.
        self.backoff = 0.2
        self._lock = threading.Lock()

    def close(self) -> None:
        """End the open watch now (from the follower's thread), not at its next event.

        An API server may send nothing for a long time: a watcher waiting for its next
        event would hold its thread and connection up to WATCH_SECONDS after the verdict.
        """
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._list_and_watch()
            except kube.WatchExpired:
                continue  # relist
            except (kube.ClusterUnreachable, kube.KubeError) as exc:
                self._retry_later(str(exc))
            except Exception as exc:  # a watcher must never die silently
                logger.exception("watcher for %s failed", self.kind)
                self._retry_later(f"{type(exc).__name__}: {exc}")

    def _retry_later(self, reason: str) -> None:
        self.events.put(("unreachable", reason))
        self.stop.wait(self.backoff)
        self.backoff = min(self.backoff * 2, 5.0)

    def _list_and_watch(self) -> None:
        items, version = kube.list_objects(
            self.cluster, self.kind, self.namespace, **self.selectors
        )
        self.backoff = 0.2
        self.events.put(("list", (self.kind, items)))
        while not self.stop.is_set():
            stream = kube.WatchStream(
                self.cluster, self.kind, self.namespace, resource_version=version,
                timeout_seconds=WATCH_SECONDS, **self.selectors,
            )  # fmt: skip
            with self._lock:
                self._stream = stream
            if self.stop.is_set():  # stopped before close() could see this stream
                stream.close()
                return
            for event in stream.events():
                version = event.object.get("metadata", {}).get("resourceVersion", version)
                if event.type != "BOOKMARK":
                    self.events.put(("event", (self.kind, event)))
                if self.stop.is_set():
                    return


@dataclass
class Follower:
    """Follows the rollout of one Deployment object to a verdict."""

    cluster: Cluster
    namespace: str
    name: str
    sha: str
    deadline: float  # time.monotonic() after which the rollout has timed out
    timeout_seconds: int
    unreachable_limit: float
    on_progress: Callable[[str, str], None]  # (source, message) for the timeline
    should_stop: Callable[[], bool]  # cancellation, or the worker shutting down
    observation: Observation = field(default_factory=Observation)

    def run(self) -> RolloutResult:
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        deployment = self._read_deployment()
        if isinstance(deployment, RolloutResult):
            return deployment
        if deployment is None:
            return RolloutResult("failed", f"Deployment {self.name} is not in {self.namespace}")
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        pod_selector = ",".join(f"{k}={v}" for k, v in {**labels, LABEL_SHA: self.sha}.items())
        watchers = [
            _Watcher(cluster=self.cluster, kind="Deployment", namespace=self.namespace,
                     selectors={"field_selector": f"metadata.name={self.name}"},
                     events=events, stop=stop),
            _Watcher(cluster=self.cluster, kind="Pod", namespace=self.namespace,
                     selectors={"label_selector": pod_selector}, events=events, stop=stop),
        ]  # fmt: skip
        for watcher in watchers:
            watcher.start()
        try:
            return self._loop(events)
        finally:
            stop.set()
            for watcher in watchers:
                watcher.close()

    def _read_deployment(self) -> Obj | RolloutResult | None:
        """The Deployment as it is now, retried like the watches while the cluster is away.

        A 5xx or a refused connection on this first read must not end the deployment: it is
        the same outage the watchers ride out, bounded by the same unreachable limit.
        """
        backoff = 0.2
        while True:
            try:
                return kube.read_deployment(self.cluster, self.namespace, self.name)
            except (kube.ClusterUnreachable, kube.KubeError) as exc:
                unreachable = self._absorb("unreachable", str(exc))
                if unreachable:
                    return RolloutResult("failed", unreachable)
            if self.should_stop():
                return RolloutResult("interrupted", "stopped following")
            if time.monotonic() > self.deadline:
                return RolloutResult(
                    "failed", f"rollout did not finish within {self.timeout_seconds} s "
                    f"(cluster unreachable: {self.observation.unreachable_reason})",
                )  # fmt: skip
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _loop(self, events: "queue.Queue[tuple[str, Any]]") -> RolloutResult:
        last_reason = ""
        while True:
            if self.should_stop():
                return RolloutResult("interrupted", "stopped following")
            if time.monotonic() > self.deadline:
                return RolloutResult(
                    "failed", f"rollout did not finish within {self.timeout_seconds} s"
                    + (f" (last seen: {last_reason})" if last_reason else ""),
                )  # fmt: skip
            try:
                kind, payload = events.get(timeout=0.5)
            except queue.Empty:
                # Watchers blocked in a connect or a read send nothing: the limit still holds.
                unreachable = self._unreachable_too_long()
                if unreachable:
                    return RolloutResult("failed", unreachable)
                continue
            unreachable = self._absorb(kind, payload)
            if unreachable:
                return RolloutResult("failed", unreachable)
            if self.observation.deployment is None:
                continue
            verdict = health.assess(
                self.observation.deployment, list(self.observation.pods.values())
            )
            if verdict.reason != last_reason:
                last_reason = verdict.reason
                self.on_progress("rollout", verdict.reason)
            if verdict.state != "progressing":
                return RolloutResult(verdict.state, verdict.reason)

    def _absorb(self, kind: str, payload: Any) -> str:
        seen = self.observation
        if kind == "unreachable":
            now = time.monotonic()
            if seen.unreachable_since is None:
                seen.unreachable_since = now
                self.on_progress("cluster", f"cluster unreachable, retrying: {payload}")
            seen.unreachable_reason = str(payload)
            return self._unreachable_too_long()
        if seen.unreachable_since is not None:
            seen.unreachable_since = None
            self.on_progress("cluster", "cluster reachable again")
        if kind == "list":
            object_kind, items = payload
            if object_kind == "Deployment":
                seen.deployment = items[0] if items else None
            else:
                seen.pods = {item["metadata"]["name"]: item for item in items}
            return ""
        object_kind, event = payload
        if object_kind == "Deployment":
            seen.deployment = None if event.type == "DELETED" else event.object
        else:
            self._pod_event(event)
        return ""

    def _unreachable_too_long(self) -> str:
        since = self.observation.unreachable_since
        if since is None or time.monotonic() - since <= self.unreachable_limit:
            return ""
        return (
            f"cluster unreachable for more than {self.unreachable_limit:.0f} s: "
            f"{self.observation.unreachable_reason}"
        )

    def _pod_event(self, event: kube.WatchEvent) -> None:
        name = event.object["metadata"]["name"]
        if event.type == "DELETED":
            self.observation.pods.pop(name, None)
            return
        before = self._pod_reason(self.observation.pods.get(name))
        self.observation.pods[name] = event.object
        after = self._pod_reason(event.object)
        if after and after != before:
            self.on_progress("pod", f"{name}: {after}")

    @staticmethod
    def _pod_reason(pod: Obj | None) -> str:
        if pod is None:
            return ""
        status = pod.get("status") or {}
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason"):
                return f"{cs.get('name')} {waiting['reason']}"
        ready = all(cs.get("ready") for cs in status.get("containerStatuses") or [{}])
        return f"{status.get('phase', 'Pending')}{', ready' if ready else ''}"
