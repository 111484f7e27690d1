"""Following one rollout with watches until the health rules say DONE or FAILED.

Three sources feed one queue, each a watch of the namespace that the worker's rollouts there
share: the Deployment and the pods of the new commit (object_watch.py), and the Events
(subscribed to before the apply: event_watch.py). The follower re-assesses on every
change. Nothing sleeps in a polling loop: the queue wait is bounded only so that deadlines,
cancellation and the lease are checked while quiet.

The pods that count are those of the *new* ReplicaSet (read when a pod fails), found as the
Kubernetes deployment controller finds it: owned by the Deployment, with the Deployment's pod
template once the `pod-template-hash` label is ignored. Pods of an older ReplicaSet of the same
commit (a redeploy with other variables) must not fail or pass the new rollout.

The timeline records what the worker saw: changes of the Deployment's conditions, pod reasons,
and the Events of the Deployment, its ReplicaSets and their pods since the rollout began.

True verdicts: the rollout is judged on what the cluster reports, never on the absence of an
answer. A resumed rollout is judged on the Deployment as it is now before anything else (it
may have completed while no worker watched). An unreachable cluster does not end the rollout
at the unreachable limit: the timeline says so and the follower waits for the cluster to
answer, then judges on its state ("cluster unreachable for 90 s; rollout had completed");
only the rollout's own deadline (time a worker watched) ends it with an unknown outcome. Before
a deadline verdict, the Deployment is read once more: it may have completed meanwhile.
"""

import copy
import logging
import queue
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from deployments.engine import health, object_watch
from deployments.engine.event_watch import SUCCESSOR, EventFeed, involves, subscribe
from deployments.rendering import LABEL_SHA
from environments import kube
from environments.models import Cluster

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
MAX_EVENTS = 60  # Events recorded per rollout; a crash loop repeats its own forever
# After the verdict, Events still on their way are recorded until none came for QUIET seconds
# (MAX at the most).
LAST_EVENTS_QUIET, LAST_EVENTS_MAX = 0.1, 1.0


@dataclass
class Observation:
    deployment: Obj | None = None
    replicasets: dict[str, Obj] = field(default_factory=dict)
    pods: dict[str, Obj] = field(default_factory=dict)
    unreachable_since: float | None = None
    unreachable_reason: str = ""
    conditions: dict[str, tuple[str, str]] = field(default_factory=dict)
    events_seen: dict[str, int] = field(default_factory=dict)  # uid -> count recorded
    events_recorded: int = 0

    def new_replicaset(self) -> Obj | None:
        """The Deployment's current ReplicaSet, as the deployment controller decides it."""
        deployment = self.deployment
        if deployment is None:
            return None
        uid = (deployment.get("metadata") or {}).get("uid")
        owned = [rs for rs in self.replicasets.values() if _owned_by(rs, uid)]
        template = (deployment.get("spec") or {}).get("template") or {}
        for rs in owned:
            if _equal_ignoring_hash((rs.get("spec") or {}).get("template") or {}, template):
                return rs
        return None

    def new_pods(self) -> list[Obj]:
        """Pods of the new ReplicaSet (none until the controller has created it)."""
        rs = self.new_replicaset()
        if rs is None:
            return []
        pod_hash = ((rs.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)
        rs_name = (rs.get("metadata") or {}).get("name")
        return [
            pod
            for pod in self.pods.values()
            if ((pod.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL) == pod_hash
            or any(
                ref.get("name") == rs_name
                for ref in (pod.get("metadata") or {}).get("ownerReferences") or []
            )
        ]


def _owned_by(obj: Obj, uid: str | None) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return uid is not None and any(ref.get("uid") == uid for ref in refs)


def _equal_ignoring_hash(a: Obj, b: Obj) -> bool:
    """Kubernetes' EqualIgnoreHash: pod templates equal once pod-template-hash is dropped."""
    a, b = copy.deepcopy(a), copy.deepcopy(b)
    for template in (a, b):
        ((template.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    return a == b


Note = tuple[str, str]  # (source, message): one timeline entry
T = TypeVar("T")
# A rollout step by step: yields notes for the timeline, is sent True to stop, returns T.
Progress = Generator[list[Note], bool | None, T]


@dataclass(frozen=True)
class RolloutResult:
    state: str  # done, failed, interrupted
    reason: str


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
    # Events older than this belong to earlier rollouts and are not recorded.
    since: datetime | None = None
    # The rollout's share of the namespace's Event watch, subscribed to before the apply (so
    # nothing older is listed and parsed). None: subscribed when following begins, and the
    # namespace's Events listed once (what happened before is part of the story).
    event_feed: EventFeed | None = None
    # A deployment resumed by another worker: its first read decides when it finished already.
    resumed: bool = False
    observation: Observation = field(default_factory=Observation)
    # The longest outage that passed the unreachable limit, once the cluster answered again.
    _outage_seconds: float = 0.0
    _warned: bool = False
    _pending: list[Note] = field(default_factory=list)
    _watches: list[object_watch.Subscription] | None = None  # None: not following
    _events: "queue.Queue[tuple[str, Any]]" = field(default_factory=queue.Queue)
    _rs_selector: str = ""

    def _note(self, source: str, message: str) -> None:
        self._pending.append((source, message))

    def take_notes(self) -> list[Note]:
        """The timeline entries seen since the last take, for the caller to record."""
        pending, self._pending = self._pending, []
        return pending

    def follow(self, *, keep_watching: bool = False) -> "Progress[RolloutResult]":
        """Follow to a verdict, the RolloutResult this generator returns.

        The rollout records nothing itself: it yields what it saw (a list of timeline notes,
        once per burst of changes, often empty) whenever it may stop, and the caller records
        them and answers with send(True) to stop following (a cancellation, the worker
        shutting down): the verdict is then "interrupted". After the verdict, take_notes()
        has the last notes. With keep_watching the watches stay open after a DONE or FAILED
        verdict, so that the caller records it first and then `close(drain=True)` returns the
        Events still on their way (a fast rollout ends before its Event watch delivered them);
        otherwise they are closed before returning."""
        try:
            result = yield from self._run()
        except BaseException:
            self.close()
            raise
        if result.state == "interrupted" or not keep_watching:
            self.close()
        return result

    def close(self, *, drain: bool = False) -> list[Note]:
        """Stop the watches; with drain, first take the Events that arrive meanwhile. Returns
        the notes not taken yet."""
        watches, self._watches = self._watches, None
        if watches is None:
            self._leave_feed()
            return self.take_notes()
        try:
            if drain:
                self._last_events(self._events)
        finally:
            self._leave_feed()
            for watch in watches:
                watch.close()
        return self.take_notes()

    def _subscribe(self) -> "queue.Queue[tuple[str, Any]]":
        """The queue every source feeds: the Event feed's (subscribed now if not before)."""
        feed, late = self.event_feed, self.event_feed is None
        if feed is None:
            feed = self.event_feed = subscribe(self.cluster, self.namespace, self.name)
        if late or not feed.covered:
            feed.backfill()
        return feed.queue

    def _run(self) -> "Progress[RolloutResult]":
        deployment = yield from self._read_deployment()
        if isinstance(deployment, RolloutResult):
            return deployment
        if deployment is None:
            return RolloutResult("failed", f"Deployment {self.name} is not in {self.namespace}")
        # A resumed rollout is judged on its current state first: one that completed while no
        # worker watched is DONE now, whatever time has passed. (A fresh one is followed
        # through its watches: its Events are part of its story.)
        self._deployment_seen(deployment)
        first = health.assess(deployment, [])
        if self.resumed and first.state == "done":
            self._note("rollout", first.reason)
            return self._verdict(first.state, first.reason)
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        self._rs_selector = ",".join(f"{k}={v}" for k, v in labels.items())
        events = self._subscribe()
        # The namespace's shared watches (object_watch.py), into the Event feed's queue.
        self._events = events
        self._watches = [
            object_watch.subscribe(
                self.cluster, self.namespace, "Deployment", object_watch.named(self.name), events
            ),
            object_watch.subscribe(
                self.cluster,
                self.namespace,
                "Pod",
                object_watch.labelled({**labels, LABEL_SHA: self.sha}),
                events,
            ),
        ]
        return (yield from self._loop(events))

    def _leave_feed(self) -> None:
        if self.event_feed is not None:
            self.event_feed.close()

    def _last_events(self, events: "queue.Queue[tuple[str, Any]]") -> None:
        """Record the Events already delivered when the verdict came (a fast rollout ends
        with some still queued), waiting a moment for those in flight, until a newer rollout
        of the Deployment subscribes (its Events would follow: they are its own story).
        Nothing else changes the verdict now."""
        deadline = time.monotonic() + LAST_EVENTS_MAX
        while time.monotonic() < deadline:
            try:
                kind, payload = events.get(timeout=LAST_EVENTS_QUIET)
            except queue.Empty:
                return
            if kind == SUCCESSOR:
                return
            if kind == "list" and payload[0] == "Event":
                for item in sorted(payload[1], key=_event_order):
                    self._event_seen(item)
            elif kind == "event" and payload[0] == "Event" and payload[1].type != "DELETED":
                self._event_seen(payload[1].object)
            elif kind == "event" and payload[0] == "Deployment" and payload[1].type != "DELETED":
                # Kept (no note, the verdict stands): the version the next apply's owner check
                # may rely on (worker.Run.remember_seen); the controllers write after the verdict.
                self.observation.deployment = payload[1].object

    def _read_deployment(self) -> "Progress[Obj | RolloutResult | None]":
        """The Deployment as it is now, retried like the watches while the cluster is away.

        A 5xx or a refused connection on this first read must not end the deployment: it is
        the same outage the watchers ride out, bounded by the rollout's deadline.
        """
        backoff = 0.2
        while True:
            try:
                found = kube.read_deployment(self.cluster, self.namespace, self.name)
                self._absorb("reachable", None)
                return found
            except (kube.ClusterUnreachable, kube.KubeError) as exc:
                self._absorb("unreachable", str(exc))
            if (yield self.take_notes()):
                return RolloutResult("interrupted", "stopped following")
            if time.monotonic() > self.deadline:
                return RolloutResult("failed", self._unknown_outcome())
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _unknown_outcome(self) -> str:
        """The reason of a deadline that passed while the cluster did not answer."""
        since = self.observation.unreachable_since
        seconds = time.monotonic() - since if since is not None else 0.0
        return (
            f"cluster unreachable for {seconds:.0f} s when the rollout's deadline "
            f"({self.timeout_seconds} s) passed; its outcome is unknown: "
            f"{self.observation.unreachable_reason}"
        )

    def _verdict(self, state: str, reason: str) -> RolloutResult:
        """A verdict from what the cluster reported; after a long outage the reason says so."""
        if self._outage_seconds:
            had = "rollout had completed" if state == "done" else "then"
            reason = f"cluster unreachable for {self._outage_seconds:.0f} s; {had}: {reason}"
        elif self.resumed and state == "done":
            reason = f"resumed: rollout had completed: {reason}"
        return RolloutResult(state, reason)

    def _timed_out(self, last_reason: str) -> "Progress[RolloutResult]":
        """The deadline passed: read the Deployment once more (it may have completed since the
        last event), then the verdict."""
        if self.observation.unreachable_since is not None:
            return RolloutResult("failed", self._unknown_outcome())
        try:
            current = kube.read_deployment(self.cluster, self.namespace, self.name)
        except (kube.ClusterUnreachable, kube.KubeError):
            current = None
        if current is not None:
            self._deployment_seen(current)
            verdict = self._assess()
            if verdict.state != "progressing":
                self._note("rollout", verdict.reason)
                return self._verdict(verdict.state, verdict.reason)
            last_reason = verdict.reason
        yield []
        return RolloutResult(
            "failed",
            f"rollout did not finish within {self.timeout_seconds} s of watching"
            + (f" (last seen: {last_reason})" if last_reason else ""),
        )

    def _loop(self, events: "queue.Queue[tuple[str, Any]]") -> "Progress[RolloutResult]":
        last_reason = ""
        while True:
            # The notes go out once per burst (when the queue is empty), not once per event.
            if (yield self.take_notes() if events.empty() else []):
                return RolloutResult("interrupted", "stopped following")
            if time.monotonic() > self.deadline:
                return (yield from self._timed_out(last_reason))
            try:
                kind, payload = events.get(timeout=0.5)
            except queue.Empty:
                # Watchers blocked in a connect or a read send nothing: the limit still holds.
                self._unreachable_too_long()
                continue
            if kind == SUCCESSOR:
                continue  # (a newer rollout's start: this one is judged by its own objects)
            self._absorb(kind, payload)
            if self.observation.deployment is None or kind == "unreachable":
                continue
            verdict = self._assess()
            if verdict.reason != last_reason:
                last_reason = verdict.reason
                self._note("rollout", verdict.reason)
            if verdict.state != "progressing":
                return self._verdict(verdict.state, verdict.reason)

    def _absorb(self, kind: str, payload: Any) -> None:
        seen = self.observation
        if kind == "unreachable":
            now = time.monotonic()
            if seen.unreachable_since is None:
                seen.unreachable_since = now
                self._note("cluster", f"cluster unreachable, retrying: {payload}")
            seen.unreachable_reason = str(payload)
            self._unreachable_too_long()
            return
        if seen.unreachable_since is not None:
            lasted = time.monotonic() - seen.unreachable_since
            seen.unreachable_since = None
            if self._warned:
                # Past the limit: the verdict to come says so (judged on the state read now).
                self._outage_seconds = max(self._outage_seconds, lasted)
                self._warned = False
                self._note("cluster", f"cluster reachable again after {lasted:.0f} s")
            else:
                self._note("cluster", "cluster reachable again")
        if kind == "reachable":
            return
        if kind == "list":
            object_kind, items = payload
            if object_kind == "Deployment":
                # Not there: not seen by the shared watch yet (its deletion is an event).
                if items:
                    self._deployment_seen(items[0])
            elif object_kind == "Event":
                for item in items:
                    self._event_seen(item)
            else:
                seen.pods = {item["metadata"]["name"]: item for item in items}
            return
        object_kind, event = payload
        if object_kind == "Deployment":
            self._deployment_seen(None if event.type == "DELETED" else event.object)
        elif object_kind == "Event":
            if event.type != "DELETED":
                self._event_seen(event.object)
        else:
            self._pod_event(event)

    def _assess(self) -> health.Verdict:
        """The health verdict on the pods of the new ReplicaSet.

        Pods are watched by commit label; only when one of them fails is it worth asking the
        cluster which ReplicaSet is new (a redeploy of the same commit has older pods too)."""
        deployment = self.observation.deployment
        assert deployment is not None
        verdict = health.assess(deployment, list(self.observation.pods.values()))
        if not verdict.pod:
            return verdict
        return health.assess(deployment, self.new_pods())

    def new_pods(self) -> list[Obj]:
        """Pods of the new ReplicaSet; the ReplicaSets are read until it is found (it does not
        change during one rollout), so an old crash-looping pod costs one read, not one each
        time it restarts. None if it cannot tell."""
        seen = self.observation
        if seen.new_replicaset() is not None:
            return seen.new_pods()
        try:
            items, _ = kube.list_objects(
                self.cluster, "ReplicaSet", self.namespace, label_selector=self._rs_selector
            )
        except (kube.ClusterUnreachable, kube.KubeError):
            return []
        seen.replicasets = {item["metadata"]["name"]: item for item in items}
        return seen.new_pods()

    def _deployment_seen(self, deployment: Obj | None) -> None:
        """Keep the Deployment; note each change of its conditions in the timeline. An older
        generation than the one kept is ignored: the shared watch may hand over what it kept
        before the apply that this rollout already read."""
        if _older(deployment, self.observation.deployment):
            return
        self.observation.deployment = deployment
        if deployment is None:
            return
        for condition in (deployment.get("status") or {}).get("conditions") or []:
            kind = str(condition.get("type", ""))
            now = (str(condition.get("status", "")), str(condition.get("reason", "")))
            if self.observation.conditions.get(kind) == now:
                continue
            self.observation.conditions[kind] = now
            message = condition.get("message") or ""
            self._note(
                "condition", f"{kind}={now[0]} ({now[1]})" + (f": {message}" if message else "")
            )

    def _event_seen(self, event: Obj) -> None:
        """Record an Event of this rollout's Deployment, ReplicaSets or pods, once per count."""
        seen = self.observation
        involved = event.get("involvedObject") or {}
        name, kind = str(involved.get("name", "")), involved.get("kind")
        if not involves(event, self.name) or seen.events_recorded >= MAX_EVENTS:
            return
        when = (
            event.get("lastTimestamp")
            or event.get("eventTime")
            or ((event.get("metadata") or {}).get("creationTimestamp"))
        )
        if self.since is not None and _before(when, self.since):
            return
        uid = str((event.get("metadata") or {}).get("uid", ""))
        count = int(event.get("count") or 1)
        if seen.events_seen.get(uid, 0) >= count:
            return
        seen.events_seen[uid] = count
        seen.events_recorded += 1
        repeat = f" (x{count})" if count > 1 else ""
        text = (
            f"{event.get('type', 'Normal')} {event.get('reason', '')} "
            f"{kind}/{name}: {event.get('message', '')}{repeat}"
        )
        if seen.events_recorded == MAX_EVENTS:
            text += f" — further events are not recorded (limit {MAX_EVENTS})"
        self._note("event", text)

    def _unreachable_too_long(self) -> None:
        """Past the unreachable limit: said once in the timeline. Not a verdict: the cluster
        may have completed the rollout meanwhile; it is judged when it answers again (or the
        rollout's deadline passes)."""
        since = self.observation.unreachable_since
        if self._warned or since is None or time.monotonic() - since <= self.unreachable_limit:
            return
        self._warned = True
        self._note(
            "cluster",
            f"cluster unreachable for more than {self.unreachable_limit:.0f} s "
            f"({self.observation.unreachable_reason}); the verdict waits for it to answer",
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
            self._note("pod", f"{name}: {after}")

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


def _older(new: Obj | None, kept: Obj | None) -> bool:
    """Whether `new` is an older generation of the same object (same uid) than `kept`."""
    if new is None or kept is None:
        return False
    new_meta, kept_meta = new.get("metadata") or {}, kept.get("metadata") or {}
    if new_meta.get("uid") != kept_meta.get("uid"):
        return False
    return int(new_meta.get("generation") or 0) < int(kept_meta.get("generation") or 0)


def _before(timestamp: Any, moment: datetime) -> bool:
    """Whether an API timestamp (RFC 3339 text) is earlier than moment; unknown is not."""
    if not timestamp:
        return False
    try:
        parsed = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed < moment


def _event_order(event: Obj) -> tuple[str, int]:
    # Timestamps have whole seconds; within one, the resourceVersion (etcd's revision in
    # practice) orders them.
    version = str((event.get("metadata") or {}).get("resourceVersion", ""))
    return (
        str(event.get("lastTimestamp") or event.get("eventTime") or ""),
        int(version) if version.isdigit() else 0,
    )
