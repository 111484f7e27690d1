"""The deployment worker (`manage.py rundeployments`).

It claims PENDING deployments with a conditional UPDATE (two workers never start the same
one), applies the manifests with server-side apply, follows the rollout and ends it DONE
or FAILED. Each claimed deployment carries a lease that the worker's heartbeat thread renews
every second (heartbeat.py), and on PostgreSQL a session-level advisory lock: a deployment
whose worker died (its lock freed by the server, or its lease expired) is resumed by any
worker, and is not applied a second time (applied_at records that the apply happened).

The database may go away under a running worker: every query of the worker is retried until
it answers again (database.py); the worker never exits for it, and the rollouts it holds
carry on.
"""

import contextlib
import contextvars
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import F, Q
from django.utils import timezone

from apollo_site.ops import context
from apollo_site.ops.metrics import ROLLOUT_DURATION
from deployments import live
from deployments.engine import (
    event_watch,
    following,
    namespace_watch,
    object_watch,
    verdicts,
)
from deployments.engine.database import (
    CONNECTION_ERRORS,
    OUTAGE,
    DatabaseUnavailable,
    drop_connection,
    retrying,
)
from deployments.engine.event_watch import EventFeed
from deployments.engine.health import assess
from deployments.engine.heartbeat import ORPHAN_AFTER, Heartbeat
from deployments.engine.rollout import Follower, Note, Progress, RolloutResult
from deployments.engine.snapshots import take_snapshot
from deployments.engine.wakeup import WorkSignal
from deployments.manifests import recorded_checked, render_checked
from deployments.models import DeployableVersion, Deployment, InvalidTransition
from deployments.policy import PolicyViolation
from deployments.rendering import RenderError
from deployments.status import Status
from environments import kube
from environments.crypto import CredentialError
from environments.models import Cluster

logger = logging.getLogger(__name__)
LEASE = timedelta(seconds=settings.APOLLO_WORKER_LEASE_SECONDS)
APPLY_ATTEMPTS = settings.APOLLO_APPLY_ATTEMPTS  # 0: the budget alone bounds the retries
APPLY_BUDGET = float(settings.APOLLO_APPLY_BUDGET_SECONDS)
UNREACHABLE_LIMIT = float(settings.APOLLO_UNREACHABLE_SECONDS)
TIMELINE_LIMIT = following.TIMELINE_LIMIT
# Rollouts one worker drives at once (`rundeployments --parallel`). On PostgreSQL a rollout
# takes a connection from the worker process's pool (database.use_pool) while it is claimed,
# applied and judged, not while it follows (following.py reads and writes for every rollout);
# the worker holds a few more (claims, heartbeat, following; its locks and the wake-up outside
# the pool): a worker following 100 rollouts holds at most the pool's max_size and two of the
# server's max_connections (100 by default), not 100. On SQLite threads are cheap and 32
# rollouts already keep its one writer busy. More rollouts wait PENDING, in order, for a free
# slot.
DEFAULT_PARALLEL = 32
STATUS_CHECK_SECONDS = following.STATUS_SECONDS  # how soon a cancellation is seen
# What a rollout sees while following is written to its timeline at most this often (and with
# the verdict, or any other note): one write per rollout and burst of changes cost a worker
# following 100 rollouts a seventh of its time. A worker killed meanwhile loses at most this
# much of what it saw (the next worker judges the rollout on the cluster's state anyway).
TIMELINE_WRITE_SECONDS = following.WRITE_SECONDS
# How long a stopping worker waits, in all, for its closed watches' threads to end.
WATCHES_CLOSING_SECONDS = 5.0
T = TypeVar("T")
RESUMABLE = [Status.STARTED, Status.PENDING_CANCELLATION, Status.CANCELING]


def claim(
    owner: str, *, exclude: Collection[int] = (), heartbeat: Heartbeat | None = None
) -> Deployment | None:
    """Claim one deployment: the oldest PENDING, or one in progress whose worker is gone.

    A worker is gone when the lease expired or, on PostgreSQL (with a heartbeat holding
    advisory locks), when the deployment's lock is free and its lease was not renewed for
    ORPHAN_AFTER (a killed worker's session ends at once; a live one renews every second). A
    lock some live worker holds is never taken, even past the lease (a worker cut off from the
    database for a while still drives it). The lock is taken here, before the row.

    exclude: the deployments this worker is driving already. Their lease may lapse while a
    call is slow; the worker must not claim them again and drive them twice.
    """
    now = timezone.now()
    locking = heartbeat is not None and heartbeat.locks is not None
    gone = Q(status__in=RESUMABLE, lease_expires_at__lt=now)
    if locking:
        gone |= Q(status__in=RESUMABLE, lease_expires_at__lt=now + LEASE - ORPHAN_AFTER)
    candidates = (
        Deployment.objects.filter(Q(status=Status.PENDING) | gone)
        .exclude(pk__in=list(exclude))
        .order_by("created_at", "id")
        .values_list("pk", "status", "lease_expires_at")[:10]
    )
    for pk, status, lease in candidates:
        if heartbeat is not None and not heartbeat.try_lock(pk):
            continue  # its worker lives
        changes: dict[str, Any] = {"lease_owner": owner, "lease_expires_at": now + LEASE}
        # Conditional on what we read: of two workers racing for this row, one updates it.
        if status == Status.PENDING:
            try:
                Deployment(pk=pk, status=status).transition_to(
                    Status.STARTED, also={**changes, "started_at": now}
                )
            except InvalidTransition:
                _unlock(heartbeat, pk)
                continue  # another worker claimed it, or it was cancelled meanwhile
        elif not Deployment.objects.filter(pk=pk, status=status, lease_expires_at=lease).update(
            **changes, updated_at=now
        ):  # a lease taken over: the status stays
            _unlock(heartbeat, pk)
            continue
        if heartbeat is not None:
            heartbeat.hold(pk)
        # With its cluster: the first owner checks need it (a query less before the apply).
        return Deployment.objects.with_related().select_related("environment__cluster").get(pk=pk)
    return None


def _unlock(heartbeat: Heartbeat | None, pk: int) -> None:
    if heartbeat is not None and heartbeat.locks is not None:
        heartbeat.locks.unlock(pk)


class Run:
    """One deployment being driven by this worker."""

    def __init__(
        self,
        deployment: Deployment,
        owner: str,
        shutdown: threading.Event,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.owner = owner
        self.shutdown = shutdown  # set: hand the deployment over now
        self.heartbeat = heartbeat
        self.lease_renewed = time.monotonic()
        self.resumed = False  # applied by an earlier worker (or an earlier run of this one)
        # The rollout's share of its namespace's Event watch, subscribed before the apply.
        self.event_feed: EventFeed | None = None
        self.events_pending: Future[EventFeed] | None = None  # event_feed, being subscribed
        self.follower: Follower | None = None  # open until its Events are recorded
        # The timeline entries seen, not written yet (written by following.py while the rollout
        # is followed), and the deployment itself.
        self.book = following.Followed(deployment)
        self.followed = False  # the book is with following.py
        self.watched_unwritten = 0.0  # seconds watched, written with the verdict
        # The claim's STARTED, not sent to the live page yet: sent while the first apply is in
        # flight (apply_round), not before it (say_started).
        self.started_unsaid = False

    @property
    def deployment(self) -> Deployment:
        return self.book.deployment

    @deployment.setter
    def deployment(self, deployment: Deployment) -> None:
        self.book.deployment = deployment

    def event_version(self, cluster: Cluster, namespace: str, name: str) -> EventFeed:
        """The Events of Deployment `name` from now on: a share of the namespace's Event watch
        (event_watch.py), taken before the apply. Sent in the request pool: the cluster is read
        by the caller (no query in the pool)."""
        return event_watch.subscribe(cluster, namespace, name)

    # -- timeline and status -------------------------------------------------------------

    def note(self, source: str, message: str) -> None:
        self.note_many([(source, message)])

    def db(self, call: Callable[[], T]) -> T:
        """A query of this run, repeated while the database is away (database.retrying)."""
        return retrying(call, shutdown=self.shutdown)

    def note_many(
        self,
        notes: list[tuple[str, str]],
        *,
        also: dict[str, Any] | None = None,
        broadcast: bool = True,
    ) -> list[dict[str, str]]:
        """Append entries to the timeline in one write (after those recorded but not written
        yet), and send each to the live page (broadcast=False: the caller sends the entries
        returned, later). `also`: other columns, written by the same UPDATE."""
        book = self.book
        with book.write_lock:
            book.add(_entries(notes))
            entries = book.take()
            if not entries and not also:
                return []
            timeline = [*self.deployment.timeline, *entries][-TIMELINE_LIMIT:]
            self.deployment.timeline = timeline
            book.written_at = time.monotonic()
            changes = {**(also or {}), "timeline": timeline}
            self.db(lambda: Deployment.objects.filter(pk=self.deployment.pk).update(**changes))
            if broadcast:
                book.written(entries)
        if broadcast:
            book.send()
        return entries

    def broadcast(self, entries: list[dict[str, str]]) -> None:
        """Entries written earlier (note_many with broadcast=False) to the live page, after
        those written before them."""
        self.book.written(entries)
        self.book.send()

    def finish(self, status: Status, reason: str, *, also: dict[str, Any] | None = None) -> None:
        """The final status (with `also`: other columns, written by the same UPDATE), with
        the timeline entries not written yet, the verdict's own, and the time watched: one
        write between the verdict and DONE."""
        d, book = self.deployment, self.book
        with book.write_lock:
            seen = book.take()
            entries = [*seen, *_entries([("worker", f"{status}: {reason}")])]
            changes = {**(also or {}), "timeline": [*d.timeline, *entries][-TIMELINE_LIMIT:]}
            if self.watched_unwritten:
                changes["watched_seconds"] = float(d.watched_seconds or 0) + self.watched_unwritten
            try:
                # With the verdicts of other rollouts waiting at the same moment, in one
                # transaction (verdicts.py). A transition whose answer was lost with the
                # connection is InvalidTransition on the retry (the row moved already):
                # re-read, as for a race.
                verdicts.commit(d, status, reason=reason, also=changes, shutdown=self.shutdown)
            except InvalidTransition:
                book.give_back(seen)
                self.db(d.refresh_from_db)
                logger.warning("deployment %s moved under us: %s", d.pk, reason)
                self.note_many([])  # what was seen, without the verdict that did not happen
                return
            except BaseException:
                book.give_back(seen)
                raise
            self.watched_unwritten = 0.0
            book.written_at = time.monotonic()
            book.written(entries)
        logger.info("deployment %s: %s (%s)", self.deployment.pk, status, reason)
        if self.deployment.started_at is not None:  # the verdict of a rollout that started
            elapsed = (timezone.now() - self.deployment.started_at).total_seconds()
            ROLLOUT_DURATION.labels(str(status)).observe(elapsed)
        # The entries (after those the following thread wrote before them), then the status:
        # one round through the channel layer.
        book.send(status=True)

    def current_status(self) -> Status:
        status = Deployment.objects.filter(pk=self.deployment.pk).values_list("status", flat=True)
        return Status(self.db(status.get))

    def owns_lease(self) -> bool:
        if self.heartbeat is not None and self.heartbeat.lost(self.deployment.pk):
            return False
        owned = Deployment.objects.filter(pk=self.deployment.pk, lease_owner=self.owner)
        return self.db(owned.exists)

    def renew_lease(self) -> bool:
        """Whether this worker still drives the deployment; False when another worker took it
        over. With a heartbeat (the worker process) the heartbeat thread renews the lease;
        without one (a bare Run) it is renewed here."""
        if self.heartbeat is not None:
            return not self.heartbeat.lost(self.deployment.pk)
        if time.monotonic() - self.lease_renewed < LEASE.total_seconds() / 3:
            return True
        renewed = self.db(
            lambda: Deployment.objects.filter(pk=self.deployment.pk, lease_owner=self.owner).update(
                lease_expires_at=timezone.now() + LEASE
            )
        )
        self.lease_renewed = time.monotonic()
        return bool(renewed)

    def may_change_cluster(self) -> bool:
        """Before an apply is sent: this worker still drives the deployment, and its lease
        is fresh enough that no other worker can have taken it over unseen."""
        if self.heartbeat is not None:
            return self.heartbeat.fresh(self.deployment.pk)
        return self.renew_lease()

    # -- the flow --------------------------------------------------------------------------

    def drive(self) -> None:
        status = Status(self.deployment.status)
        if status == Status.STARTED and self.deployment.applied_at is None:
            # A first apply comes: the live page hears STARTED while it is in flight (each
            # publish is a round through the channel layer the apply need not wait for).
            self.started_unsaid = True
        else:
            live.broadcast_status(self.deployment)
        if status == Status.STARTED:
            try:
                self.deploy()
            finally:
                self.say_started()  # (when it ended before any apply was sent)
            if self.shutdown.is_set() or not self.owns_lease():
                return  # handed over (or taken over): the next owner carries on
            status = self.current_status()
        if status in (Status.PENDING_CANCELLATION, Status.CANCELING):
            self.roll_back()

    def deploy(self) -> None:
        d = self.deployment
        documents = self.documents(d, d.version)
        if documents is None:
            return
        if d.applied_at is None:
            # Read beside the owner checks (one round of requests), settled before any apply.
            environment = d.environment
            self.events_pending = _requests(
                self.event_version,
                environment.cluster,
                environment.namespace,
                _deployment_name(documents),
            )
            sha = d.version.git_commit_sha[:12]
            verdicts.after_verdicts()
            if not self.apply(documents, what=sha, mark_applied=True):
                return
        else:
            self.resumed = True
            self.note("worker", "resumed by another worker; manifests were applied already")
        result = self.follow(documents, d.version.git_commit_sha)
        follower = self.follower
        if result.state == "interrupted":
            self.remember_seen(follower)
            return
        self.finish_with_snapshot(
            Status.DONE if result.state == "done" else Status.FAILED, result.reason
        )
        self.close_follower()
        self.remember_seen(follower)  # with what its watch saw until it closed

    def roll_back(self) -> None:
        d = self.deployment
        self.db(d.refresh_from_db)
        if d.status == Status.PENDING_CANCELLATION:
            self.db(lambda: d.transition_to(Status.CANCELING, reason=d.status_reason))
            live.broadcast_status(d)
        source = d.source_version
        if source is None:
            self.finish(
                Status.FAILED, "cancelled, but there is no previous version to roll back to"
            )
            return
        self.note("worker", f"rolling back to {source.git_commit_sha[:12]}")
        documents = self.documents(d.source_deployment(), source)
        if documents is not None:
            self.event_feed = self.event_version(
                d.environment.cluster, d.environment.namespace, _deployment_name(documents)
            )
        if documents is None or not self.apply(documents, what=f"{source.git_commit_sha[:12]}"):
            return
        result = self.follow(documents, source.git_commit_sha, cancelling=True)
        self.remember_seen(self.follower)
        if result.state == "done":
            self.finish_with_snapshot(
                Status.CANCELED, f"rolled back to {source.git_commit_sha[:12]}"
            )
        elif result.state == "failed":
            self.finish_with_snapshot(Status.FAILED, f"rollback failed: {result.reason}")
        self.close_follower()

    def documents(
        self, recorded: Deployment | None, version: DeployableVersion
    ) -> list[dict[str, Any]] | None:
        """The manifests recorded on `recorded` (rendered once, at its request), or None when
        the deployment ended FAILED. A deployment recorded without them (requested before
        they were stored) is rendered from today's templates."""
        d = self.deployment
        try:
            # SECURITY: the policy is checked again on exactly what is applied: the
            # allow-lists or the environment's settings may have changed since the request.
            if recorded is not None and recorded.manifest_documents:
                return recorded_checked(deployment=recorded, sha=version.git_commit_sha)
            return render_checked(
                service=d.service, environment=d.environment, version=version, group=d.group
            )
        except RenderError as exc:
            self.finish(Status.FAILED, f"templates cannot be rendered: {exc}")
        except PolicyViolation as exc:
            self.finish(Status.FAILED, f"the manifest policy refuses the manifests: {exc}")
        except CredentialError:
            self.finish(Status.FAILED, "the recorded manifests cannot be decrypted")
        return None

    def say_started(self, entries: list[dict[str, str]] | None = None) -> None:
        """The claim's STARTED to the live page, once (see started_unsaid), then `entries`
        (new timeline entries), in one round through the channel layer."""
        if self.started_unsaid:
            self.started_unsaid = False
            live.broadcast_status(self.deployment, then=entries or [])
        elif entries:
            self.broadcast(entries)

    def settle_events_from(self) -> None:
        """Where the rollout's Events begin, read before the first apply is sent."""
        pending, self.events_pending = self.events_pending, None
        if pending is not None:
            self.event_feed = pending.result()

    def apply(
        self, documents: list[dict[str, Any]], *, what: str, mark_applied: bool = False
    ) -> bool:
        """Server-side apply every document; False when the deployment ended FAILED.

        First (when nothing of this version was sent before) in one round of concurrent
        requests: every owner checked at once, then every document applied at once. What
        that round could not apply (an unreachable cluster), or a resumed apply, goes one
        document at a time and a retry resumes at the one that failed: with a share of 5xx
        answers, re-sending the whole list each time would rarely get through.
        APPLY_BUDGET bounds how long the attempts that meet an unreachable cluster go on.
        mark_applied: applied_at is set by the UPDATE of the "applied" entry (one write, and
        never the entry without it).
        """
        remaining: list[dict[str, Any]] | None = documents
        if not self.sent_any(what=what):
            remaining = self.apply_round(documents, what=what)
            if remaining is None:
                return False
        if remaining:
            self.settle_events_from()
            self.say_started()
            if not self.apply_one_by_one(remaining, what=what):
                return False
        kinds = ", ".join(f"{doc['kind']}/{doc['metadata']['name']}" for doc in documents)
        also = {"applied_at": timezone.now()} if mark_applied else {}
        self.note_many([("worker", f"applied {what}: {kinds}")], also=also)
        if mark_applied:
            self.deployment.applied_at = also["applied_at"]
        return True

    def sent_any(self, *, what: str) -> bool:
        return any(
            e["message"].startswith("sending apply of ") and f" ({what}) " in e["message"]
            for e in self.deployment.timeline
        )

    def apply_round(
        self, documents: list[dict[str, Any]], *, what: str
    ) -> list[dict[str, Any]] | None:
        """Check every owner, then apply every document, each step in concurrent requests.
        The documents left to apply one by one (all of them when a check did not answer
        cleanly: the one-by-one path checks again and says why), or None when it ended."""
        d = self.deployment
        cluster, namespace = d.environment.cluster, d.environment.namespace
        checked = self.check_owners(documents)
        if checked is None:
            return documents
        # Every apply sent is in the timeline, before it is sent (one entry per document).
        # Written while the Event watch is being joined (settle_events_from waits for it): an
        # entry says an apply may have been sent, and one that was not (the lease lost below)
        # is found not applied by whoever resumes (sent_before), as after a crash.
        sending = self.note_many(
            [
                ("worker", f"sending apply of {_named(doc)} ({what}) from {self.owner}")
                for doc in documents
            ],
            broadcast=False,
        )
        self.settle_events_from()
        if not self.may_change_cluster():
            self.note("worker", f"{self.owner} lost its lease before the apply; handed over")
            return None
        applies = [
            _requests(kube.apply, cluster, namespace, [doc], checked=checked) for doc in documents
        ]
        # The live page hears of it while the applies are in flight, not before they are sent:
        # the claim's STARTED and these entries in one round (each round is an event loop and
        # a thread of async_to_sync).
        self.say_started(sending)
        wait(applies)
        left = []
        for doc, sent in zip(documents, applies, strict=True):
            error = sent.exception()
            if isinstance(error, kube.ClusterUnreachable):
                left.append(doc)  # retried one by one (after a check whether it went through)
            elif isinstance(error, kube.NotOwned):
                self.finish_with_snapshot(Status.FAILED, f"not applied: {error}")
                return None
            elif isinstance(error, kube.KubeError):
                self.finish_with_snapshot(
                    Status.FAILED, f"the cluster refused the manifests: {error}"
                )
                return None
            elif error is not None:
                raise error
        return left

    def check_owners(
        self, documents: list[dict[str, Any]]
    ) -> dict[tuple[str, str], str | None] | None:
        """Every document's owner check, in concurrent requests: the version each apply is
        sent with, or None when a check did not answer cleanly.

        SECURITY: every object's owner is checked before the first apply, as one by one. An
        object this process saw last carrying the document's identity (applied, or watched
        by the rollout before) is not read again: its version goes with the apply as a
        precondition, and any change since makes the API server refuse it (kube.known_version)."""
        d = self.deployment
        cluster, namespace = d.environment.cluster, d.environment.namespace
        known = [kube.known_version(cluster, namespace, doc) for doc in documents]
        checks = [
            None if version else _requests(kube.owned_version, cluster, namespace, doc)
            for doc, version in zip(documents, known, strict=True)
        ]
        sent = [check for check in checks if check is not None]
        wait(sent)
        if any(check.exception() is not None for check in sent):
            return None
        return {
            (doc["kind"], doc["metadata"]["name"]): version if check is None else check.result()
            for doc, version, check in zip(documents, known, checks, strict=True)
        }

    def remember_seen(self, follower: Follower | None) -> None:
        """The Deployment as the rollout's watch saw it last: the next deployment's owner check
        needs no read when it did not change since (check_owners)."""
        if follower is not None and follower.observation.deployment is not None:
            kube.remember(
                follower.cluster,
                follower.namespace,
                follower.observation.deployment,
                kind="Deployment",
            )

    def apply_one_by_one(self, documents: list[dict[str, Any]], *, what: str) -> bool:
        d = self.deployment
        cluster, namespace = d.environment.cluster, d.environment.namespace
        pending, retry = list(documents), _ApplyRetry()
        # SECURITY: every object's owner is checked before the first apply: a deployment
        # refused for one of them applies none. One call per step, as the applies.
        unchecked, checked = list(documents), dict[tuple[str, str], str | None]()
        while pending:
            doc = (unchecked or pending)[0]
            key = (doc["kind"], doc["metadata"]["name"])
            try:
                if unchecked:
                    first = key not in checked
                    checked[key] = kube.owned_version(cluster, namespace, doc)
                    unchecked.pop(0)
                    if first:  # progress; a re-check before a retried apply is not
                        retry = _ApplyRetry()
                    continue
                if doc["kind"] == "Deployment" and self.sent_before(doc, what=what):
                    pending.pop(0)
                    retry = _ApplyRetry()
                    continue
                if not self.may_change_cluster():
                    # Another worker may drive it now (or soon): never send an apply then.
                    self.note(
                        "worker", f"{self.owner} lost its lease before the apply; handed over"
                    )
                    return False
                # Every apply sent is in the timeline, before it is sent (one per document).
                self.note(
                    "worker", f"sending apply of {doc['kind']}/{key[1]} ({what}) from {self.owner}"
                )
                kube.apply(cluster, namespace, [doc], checked=checked)
            except kube.ClusterUnreachable as exc:
                if not unchecked:
                    # The apply may have gone through unanswered: check that object again.
                    unchecked.append(doc)
                if not self.apply_again(retry, exc, what=what):
                    return False
                continue
            except kube.NotOwned as exc:
                self.finish_with_snapshot(Status.FAILED, f"not applied: {exc}")
                return False
            except kube.KubeError as exc:
                self.finish_with_snapshot(
                    Status.FAILED, f"the cluster refused the manifests: {exc}"
                )
                return False
            pending.pop(0)
            retry = _ApplyRetry()
        return True

    def apply_again(self, retry: "_ApplyRetry", exc: Exception, *, what: str) -> bool:
        """An apply step met an unreachable cluster: True to try again (after the wait), False
        when the deployment ended FAILED or the worker is stopping.

        Retried for APPLY_BUDGET seconds of outage (never longer than the environment's rollout
        timeout; APPLY_ATTEMPTS, when set, also bounds their number): a count of attempts with
        backoff gave up after ~7.5 s, shorter than a realistic outage. Once an apply may have
        gone through unanswered, it waits up to the rollout timeout for the cluster to answer."""
        d = self.deployment
        timeout = d.environment.rollout_timeout_seconds
        retry.attempt += 1
        retry.since = retry.since or time.monotonic()
        waited = time.monotonic() - retry.since
        budget = min(APPLY_BUDGET, timeout)
        counted = f"{retry.attempt}/{APPLY_ATTEMPTS}" if APPLY_ATTEMPTS else str(retry.attempt)
        self.note("cluster", f"apply attempt {counted} failed: {exc}")
        spent = waited >= budget or bool(APPLY_ATTEMPTS and retry.attempt >= APPLY_ATTEMPTS)
        name = d.environment.cluster.name
        if spent and self.sent_unanswered(what=what):
            # The cluster may have applied it and lost only the answer: not FAILED
            # while it may run it; judged once it answers (bounded by the timeout).
            if waited >= timeout:
                self.finish(
                    Status.FAILED,
                    f"cluster {name} unreachable for {waited:.0f} s after an apply "
                    f"was sent; whether it went through is unknown: {exc}",
                )
                return False
            if not retry.announced:
                retry.announced = True
                self.note(
                    "cluster",
                    "an apply was sent before the cluster stopped answering: "
                    "waiting for it to answer to see whether it went through",
                )
            return retry.wait(self, timeout - waited, "before the apply was confirmed")
        if spent:
            self.finish(
                Status.FAILED,
                f"cluster {name} unreachable after {retry.attempt} attempts "
                f"over {waited:.0f} s: {exc}",
            )
            return False
        # Stopping: the next worker applies it (applied_at is still unset).
        return retry.wait(self, budget - waited, "before the apply went through")

    def sent_unanswered(self, *, what: str) -> bool:
        """Whether an apply of the Deployment was sent for this version (by this worker or
        one before it): the cluster may have applied it without answering."""
        return any(
            e["message"].startswith("sending apply of Deployment/")
            and f" ({what}) " in e["message"]
            for e in self.deployment.timeline
        )

    def sent_before(self, doc: dict[str, Any], *, what: str) -> bool:
        """Whether an apply of this Deployment was sent before (by a worker killed during the
        apply, or by this one when the answer was lost) and went through: the timeline records
        each apply before it is sent, and the live object holds every field of the document.
        Then it is not sent a second time."""
        key = f"sending apply of Deployment/{doc['metadata']['name']} ({what}) from "
        earlier = [e["message"] for e in self.deployment.timeline if e["message"].startswith(key)]
        if not earlier:
            return False
        d = self.deployment
        live = kube.read_deployment(
            d.environment.cluster, d.environment.namespace, doc["metadata"]["name"]
        )
        if live is None or not _holds(live.get("spec"), doc.get("spec")):
            return False
        if not _holds((live.get("metadata") or {}).get("labels"), doc["metadata"].get("labels")):
            return False
        sender = earlier[-1].rsplit(" from ", 1)[-1]
        self.note(
            "worker",
            f"Deployment/{doc['metadata']['name']}: the apply {sender} sent had gone through; "
            "not sent again",
        )
        return True

    def follow(
        self, documents: list[dict[str, Any]], sha: str, *, cancelling: bool = False
    ) -> RolloutResult:
        d = self.deployment
        name = _deployment_name(documents)
        timeout = d.environment.rollout_timeout_seconds
        # A forward rollout's clock counts the time a worker watched it (a resumed one keeps
        # what was watched before, never the wall time when no worker watched); a rollback is
        # a rollout of its own and gets the whole timeout, however late in the forward rollout
        # the cancellation came.
        watched = 0.0 if cancelling else float(d.watched_seconds or 0)
        remaining = timeout - watched
        started = timezone.now() if cancelling else (d.started_at or timezone.now())
        began, status_read = time.monotonic(), 0.0

        def should_stop() -> bool:
            nonlocal status_read
            if self.shutdown.is_set() or not self.renew_lease():
                return True
            # A cancellation request interrupts a forward rollout (not the rollback itself).
            # The status is read every STATUS_CHECK_SECONDS, in the worker by following.py for
            # every rollout at once (read by each follower, it was a third of a worker's time
            # following 100 rollouts).
            if cancelling:
                return False
            if not self.followed and time.monotonic() - status_read >= STATUS_CHECK_SECONDS:
                self.book.status, status_read = self.current_status(), time.monotonic()
            return self.book.status not in ("", Status.STARTED)

        follower = Follower(
            cluster=d.environment.cluster,
            namespace=d.environment.namespace,
            name=name,
            sha=sha,
            deadline=time.monotonic() + max(remaining, 1),
            timeout_seconds=timeout,
            unreachable_limit=UNREACHABLE_LIMIT,
            # Event timestamps have whole seconds: from the start of the rollout's second.
            since=started.replace(microsecond=0),
            event_feed=self.event_feed,
            resumed=not cancelling and self.resumed,
        )
        self.follower, self.event_feed = follower, None  # (the follower leaves the feed)
        result = RolloutResult("interrupted", "")
        # In the worker process (a heartbeat), the timeline and the status go through
        # following.py; a bare Run (a test driving it in its own transaction) does both itself.
        self.book.status, self.followed = "", self.heartbeat is not None
        if self.followed:
            following.join(self.book)
            # Nothing is asked of the database while following (following.py asks for every
            # rollout): on PostgreSQL the connection goes back to the pool for the rollout's
            # length and is taken again, open, for the verdict, so that following 100
            # rollouts does not hold 100 of them.
            _give_connection_back()
        try:
            result = self.record_progress(follower.follow(keep_watching=True), should_stop)
        finally:
            following.leave(self.book)
            self.followed = False
            if cancelling:
                pass
            elif result.state == "interrupted":  # (no verdict to write it with)
                self._add_watched(time.monotonic() - began)
            else:
                self.watched_unwritten = time.monotonic() - began
        # With the verdict (finish): the rollout's last notes.
        self.book.add(_entries(follower.take_notes()))
        if result.state == "failed":
            self.explain_failure(follower)
        return result

    def _add_watched(self, seconds: float) -> None:
        pk = self.deployment.pk
        with contextlib.suppress(DatabaseUnavailable):
            self.db(
                lambda: Deployment.objects.filter(pk=pk).update(
                    watched_seconds=F("watched_seconds") + seconds
                )
            )

    def record_progress(
        self, steps: Progress[RolloutResult], should_stop: Callable[[], bool]
    ) -> RolloutResult:
        """Drive the rollout, recording what it saw as it goes (one timeline write per burst)
        and telling it to stop when should_stop() says so; its verdict."""
        try:
            notes = next(steps)
            while True:
                self.record(notes)
                notes = steps.send(should_stop())
        except StopIteration as verdict:
            result: RolloutResult = verdict.value
            return result

    def record(self, notes: list[Note]) -> None:
        """What the rollout saw, stamped now, written with the next write or when
        TIMELINE_WRITE_SECONDS have passed since the last one (while it is followed, by
        following.py: this thread does not wait for the database)."""
        book = self.book
        book.add(_entries(notes))
        if self.followed:
            return
        if book.unwritten and time.monotonic() - book.written_at >= TIMELINE_WRITE_SECONDS:
            self.note_many([])

    def close_follower(self) -> None:
        """After the verdict is recorded: the Events still arriving, then the watches close
        (and a share of the Event watch taken for an apply that never came is given back)."""
        follower, self.follower = self.follower, None
        try:
            if follower is not None:
                if self.heartbeat is not None:
                    # The drain waits for the cluster (at least rollout.LAST_EVENTS_QUIET) with the
                    # verdict committed: on PostgreSQL the connection goes back to the pool
                    # meanwhile. Held through the drain, 100 verdicts at once ran the pool's
                    # 20 out, and a verdict waited up to 69 ms for a connection.
                    _give_connection_back()
                self.record(follower.close(drain=True))
            self.note_many([])  # whatever is still unwritten
        finally:
            with contextlib.suppress(Exception):
                self.settle_events_from()
            feed, self.event_feed = self.event_feed, None
            if feed is not None:
                feed.close()

    def explain_failure(self, follower: Follower) -> None:
        """Put the last log lines of the failing container into the timeline.

        A crash loop: the previous (crashed) container's log. A rollout that timed out or
        exceeded its progress deadline: the log of a new pod that is not ready, which usually
        says why its readiness check fails. An image that cannot be pulled has no log."""
        observed = follower.observation
        if observed.deployment is None:
            return
        pods = follower.new_pods()
        verdict = assess(observed.deployment, pods)
        if verdict.pod and verdict.container:
            if "crash" not in verdict.reason:
                return
            target = (verdict.pod, verdict.container, True)
        else:
            found = _unready_container(pods)
            if found is None:
                return
            target = (*found, False)
        pod, container, previous = target
        try:
            lines = kube.pod_log_tail(
                follower.cluster, follower.namespace, pod, container=container, previous=previous
            )
        except (kube.ClusterUnreachable, kube.KubeError) as exc:
            # The logs are a courtesy: the verdict stays the reason.
            self.note(live.LOG_SOURCE, f"the last log lines could not be read: {exc}")
            return
        if lines:
            self.note(live.LOG_SOURCE, "\n".join(lines))

    def finish_with_snapshot(self, status: Status, reason: str) -> None:
        """End the deployment with a snapshot of what the environment runs now (DONE,
        CANCELED, and FAILED alike: what a failed rollout left behind matters most). Not when
        the cluster was lost: the reason says so, and asking again would only wait longer.
        Verdicts first: this worker's new work waits meanwhile (verdicts.after_verdicts)."""
        with verdicts.recording():
            self._finish_with_snapshot(status, reason)

    def _finish_with_snapshot(self, status: Status, reason: str) -> None:
        d = self.deployment
        if status == Status.FAILED and "unreachable" in reason:
            snapshot: dict[str, Any] = {"error": "no snapshot: the cluster was unreachable"}
        else:
            try:
                # From the namespace's shared Deployment watch (object_watch.py) when it is up
                # to date: it delivered the change that decided the verdict (a list of 100
                # Deployments at each of 100 verdicts was p95 82 ms between verdict and DONE).
                env = d.environment
                kept = object_watch.kept(env.cluster, env.namespace, "Deployment")
                snapshot = take_snapshot(env, deployments=kept)
            except (kube.ClusterUnreachable, kube.KubeError) as exc:
                snapshot = {"error": f"snapshot failed: {exc}"}
        # With the status, in one UPDATE: a write less between the verdict and DONE. (A status
        # that moved meanwhile, a cancel, keeps no snapshot: the rollback records its own.)
        self.finish(status, reason, also={"environment_snapshot": snapshot})


def drive_deployment(
    deployment: Deployment,
    owner: str,
    shutdown: threading.Event,
    heartbeat: Heartbeat | None = None,
) -> None:
    """Drive one claimed deployment to a terminal state; never leave it stuck on an error.

    shutdown set: hand it over (the lease released at once). A database outage is waited out
    by each query (Run.db); the worker stopping during one leaves the deployment to the next
    worker (the lease or the lock frees it), never FAILED for it."""
    run = Run(deployment, owner, shutdown, heartbeat)
    # This thread's log lines name the deployment and the request that asked for it.
    tokens = context.enter_deployment(
        deployment.pk,
        requested_by=deployment.request_id,
        user=deployment.deployed_by.get_username(),
    )
    logger.info("deployment %s: driven by %s from %s", deployment.pk, owner, deployment.status)
    try:
        _drive(run)
    except DatabaseUnavailable:
        logger.warning("deployment %s: left to the next worker (no database)", deployment.pk)
    except Exception as exc:
        logger.exception("deployment %s failed in the worker", deployment.pk)
        with contextlib.suppress(DatabaseUnavailable):
            run.db(deployment.refresh_from_db)
            if not Status(deployment.status).is_terminal:
                run.finish(
                    Status.FAILED, f"internal error in the worker: {type(exc).__name__}: {exc}"
                )
    finally:
        with contextlib.suppress(Exception):
            run.close_follower()  # never leave watch threads behind
        if shutdown.is_set():
            # Hand the deployment over at once rather than when the lease runs out (first no
            # beat may renew it: one in flight would extend the lease just ended).
            if heartbeat is not None:
                heartbeat.stop_renewing(deployment.pk)
            with contextlib.suppress(*CONNECTION_ERRORS):
                Deployment.objects.filter(pk=deployment.pk, lease_owner=owner).update(
                    lease_expires_at=timezone.now()
                )
        if heartbeat is not None:
            heartbeat.release(deployment.pk)  # after the lease: then the lock
        _connection_after_rollout()
        context.leave_deployment(tokens)


def _drive(run: Run) -> None:
    """run.drive(), and again when a query failed in a way the retries do not cover (a
    connection lost inside a transaction): the deployment is re-read and resumed while this
    worker still holds it. Each resume waits longer (0.1 s doubling to 5 s): a failure that
    repeats must not turn into a busy loop."""
    delay = 0.1
    while True:
        try:
            run.drive()
            run.close_follower()
            return
        except CONNECTION_ERRORS as exc:
            logger.warning(
                "deployment %s: database lost mid-step (%s); resuming", run.deployment.pk, exc
            )
            with contextlib.suppress(Exception):
                run.close_follower()
            if run.shutdown.wait(delay):
                return  # stopping: the lease is handed over by the caller
            delay = min(delay * 2, 5.0)
            run.db(run.deployment.refresh_from_db)
            if Status(run.deployment.status).is_terminal or not run.owns_lease():
                return
            run.deployment = run.db(
                lambda: Deployment.objects.with_related().get(pk=run.deployment.pk)
            )


# The Kubernetes requests of one step of a rollout, sent at once (apply_round). Shared by the
# worker's rollouts: each waits for its own requests only.
_REQUESTS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="kube-request")


def _requests(call: Callable[..., T], *args: Any, **kwargs: Any) -> "Future[T]":
    """call(*args, **kwargs) in the request pool, in this thread's context (its log tags)."""
    return _REQUESTS.submit(
        contextvars.copy_context().run, _no_connection_kept, call, *args, **kwargs
    )


def _give_connection_back() -> None:
    """On PostgreSQL, this thread's connection back to the worker process's pool
    (database.use_pool), before a wait on the cluster alone; its next query takes one again,
    open. A connection is one of the server's slots and one of the pool's 20. SQLite's
    connections are files of this process: kept. Never inside a transaction."""
    connection = connections["default"]
    if connection.vendor != "sqlite" and not connection.in_atomic_block:
        connections.close_all()


def _connection_after_rollout() -> None:
    """This rollout thread's connection once its rollout is over: closed on PostgreSQL (back to
    the worker process's pool: a thread waiting for its next rollout holds none of the server's
    slots), kept on SQLite, where it is a file of this process, for the thread's next rollout.
    Opened again, it made that rollout's first write, the timeline entry sent before the first
    apply, wait 3.9 ms (Django's SQL functions registered again, the journal mode set again).
    Closed on SQLite too when a transaction was left open."""
    connection = connections["default"]
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        connections.close_all()


def _no_connection_kept(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The pool's threads live as long as the process: a database connection one of them
    opened would outlive an outage (terminated, then "the connection is closed" at every later
    use, and every rollout given to that thread failed its step again and again). The calls
    are Kubernetes requests and should open none; any that one did is closed here."""
    try:
        return call(*args, **kwargs)
    finally:
        connections.close_all()


def _entries(notes: list[Note]) -> list[dict[str, str]]:
    at = timezone.now().isoformat()
    return [{"at": at, "source": source, "message": text[:1000]} for source, text in notes]


def _deployment_name(documents: list[dict[str, Any]]) -> str:
    return str(next(doc for doc in documents if doc["kind"] == "Deployment")["metadata"]["name"])


class _ApplyRetry:
    """The retries in a row of one apply step against an unreachable cluster: how many, since
    when, the next wait (0.5 s doubling to 8 s), whether the wait for a lost answer was said."""

    def __init__(self) -> None:
        self.attempt = 0
        self.since: float | None = None
        self.delay = 0.5
        self.announced = False

    def wait(self, run: Run, left: float, stopping: str) -> bool:
        """Wait before the next attempt, never past what is `left` of the bound: False (and
        noted) when the worker is stopping meanwhile."""
        if run.heartbeat is not None and connections["default"].vendor != "sqlite":
            # The wait holds no database connection: on PostgreSQL they come from the
            # worker process's pool (database.use_pool), and rollouts waiting out an unreachable
            # cluster must not keep the others' verdicts waiting for one.
            connections.close_all()
        if run.shutdown.wait(max(min(self.delay, left), 0.05)):
            run.note("worker", f"worker stopping {stopping}")
            return False
        self.delay = min(self.delay * 2, 8.0)
        return True


def _named(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def _forget(done: Callable[[int], None], pk: int, _future: object) -> None:
    done(pk)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def run_worker(
    *,
    shutdown: threading.Event,
    poll_interval: float = 0.5,
    parallel: int = DEFAULT_PARALLEL,
    owner: str | None = None,
    on_idle: Callable[[], None] | None = None,
    grace: float = 0.0,
) -> None:
    """Claim and drive deployments until shutdown is set.

    Once it is set, no deployment is claimed; those being driven get `grace` seconds to
    finish, then they are handed over (each lease released at once, each lock freed), so that
    another worker resumes them at once instead of when the lease runs out.
    """
    owner = owner or worker_name()
    active: set[int] = set()
    lock = threading.Lock()
    handover = threading.Event()
    heartbeat = retrying(lambda: Heartbeat(owner=owner, lease=LEASE).start(), shutdown=shutdown)

    def done(pk: int) -> None:
        with lock:
            active.discard(pk)

    try:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="deploy") as pool:
            try:
                _claim_loop(
                    owner=owner,
                    shutdown=shutdown,
                    handover=handover,
                    heartbeat=heartbeat,
                    pool=pool,
                    active=active,
                    lock=lock,
                    done=done,
                    parallel=parallel,
                    poll_interval=poll_interval,
                    on_idle=on_idle,
                )
            finally:
                _finish_or_hand_over(active, lock, handover, grace)
                # This thread's connection (the claims): closed, not left open on the server.
                connections.close_all()
    except DatabaseUnavailable:
        pass  # stopped while the database was away
    finally:
        heartbeat.stop()
        connections.close_all()
        # Those lingering for a next rollout (none will come), their threads ended: none may
        # still be reading from a cluster when the process exits.
        namespace_watch.close_unused(wait=WATCHES_CLOSING_SECONDS)


def _finish_or_hand_over(
    active: set[int], lock: threading.Lock, handover: threading.Event, grace: float
) -> None:
    """After shutdown: wait up to `grace` for the rollouts being driven, then hand over."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with lock:
            if not active:
                break
        time.sleep(0.05)
    handover.set()


def _claim_loop(
    *,
    owner: str,
    shutdown: threading.Event,
    handover: threading.Event,
    heartbeat: Heartbeat,
    pool: ThreadPoolExecutor,
    active: set[int],
    lock: threading.Lock,
    done: Callable[[int], None],
    parallel: int,
    poll_interval: float,
    on_idle: Callable[[], None] | None,
) -> None:
    work: WorkSignal | None = None
    delay = 0.2
    try:
        while not shutdown.is_set():
            if work is None and delay == 0.2:  # (not while the database is away)
                # Listening before looking: work committed between the look and the wait
                # still wakes this worker (wakeup.py).
                work = _open_signal(shutdown)
            try:
                close_old_connections()
                verdicts.after_verdicts()
                with lock:
                    busy = set(active)
                deployment = (
                    claim(owner, exclude=busy, heartbeat=heartbeat)
                    if len(busy) < parallel
                    else None
                )
                OUTAGE.answered()
            except CONNECTION_ERRORS as exc:
                # Lost, refused or terminated: log once, wait, carry on (never exit for it).
                OUTAGE.failed(exc)
                drop_connection()
                if work is not None:
                    _close_quietly(work)
                    work = None
                shutdown.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            if deployment is None:
                if on_idle is not None:
                    on_idle()
                if work is None:
                    work = _open_signal(shutdown)
                try:
                    if work is None:
                        shutdown.wait(poll_interval)
                    else:
                        work.wait(poll_interval)
                except Exception:  # (the LISTEN connection died: poll, reopen it)
                    _close_quietly(work)
                    work = None
                    shutdown.wait(poll_interval)
                continue
            with lock:
                active.add(deployment.pk)
            future = pool.submit(drive_deployment, deployment, owner, handover, heartbeat)
            future.add_done_callback(functools.partial(_forget, done, deployment.pk))
    finally:
        if work is not None:
            _close_quietly(work)


def _open_signal(shutdown: threading.Event) -> WorkSignal | None:
    """What wakes the worker (wakeup.py), or None while it cannot be opened (the worker
    polls meanwhile)."""
    try:
        return WorkSignal(shutdown).__enter__()
    except Exception as exc:  # (psycopg's, redis-py's or the socket's own errors)
        logger.debug("no wake-up (%s): polling", exc)
        return None


def _close_quietly(work: WorkSignal | None) -> None:
    if work is None:
        return
    with contextlib.suppress(Exception):
        work.__exit__(None, None, None)


def _holds(live: Any, wanted: Any) -> bool:
    """Whether the live value holds every field of the wanted one (the API server adds
    defaults; a value it normalised differently counts as not held: sent again, harmlessly)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(
            key in live and _holds(live[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(live) == len(wanted)
            and all(_holds(a, b) for a, b in zip(live, wanted, strict=True))
        )
    return bool(live == wanted or str(live) == str(wanted))


def _unready_container(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """A running container of a new pod that is not ready: (pod, container), or None."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if not cs.get("ready") and (cs.get("state") or {}).get("running") is not None:
                return pod["metadata"]["name"], str(cs.get("name", ""))
    return None
