"""The verdicts of a worker process, committed together when they wait at the same moment.

Each verdict was its own transaction (the conditional UPDATE of its status, its outbox rows,
an automatic revert): following 100 rollouts on SQLite, up to 100 threads asked for the one
writer's lock at once, and SQLite's busy handler lets the waiters sleep up to 100 ms between
two tries, so that a verdict waited behind every newer one (#16: BEGIN IMMEDIATE waited a
median 180 ms and up to 4.7 s, the statements themselves under 1 ms).

Here, on SQLite, the verdicts queue in the process (a group commit): a verdict that finds no
other being written writes itself at once, in its own thread (no added delay for a lone
verdict); the verdicts that arrive meanwhile are written by the first of them as soon as that
write ends, all in **one** transaction. So the worker asks for the writer's lock once per
burst of verdicts, not once per verdict. A lone verdict is written with the statements of
before (transition_to's own transaction, no savepoint). On PostgreSQL each verdict is written
at once on its own connection, as before.

Each verdict keeps its guards: it is `Deployment.transition_to` (conditional on the status the
worker saw), so that one that lost a race (a cancel, a hand-over: InvalidTransition) or failed
otherwise is undone alone and its caller gets its error, while the others commit. A verdict
with more to write than its status (outbox rows, a FAILED's rollbacks that stick) is in a
savepoint of its own; one that is its conditional UPDATE alone needs none (it changes nothing
when it matches no row), and should it fail otherwise, the batch is rolled back and each of its
verdicts written in a transaction of its own.

A lost connection aborts the whole transaction: it is retried whole (database.retrying) with
each deployment's status as its caller saw it, as one verdict was. Its caller learns the
outcome only once the transaction committed (or failed): a worker killed before the commit
leaves every verdict of the batch to the next worker, which decides again.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from deployments.engine.database import CONNECTION_ERRORS, retrying
from deployments.models import Deployment
from deployments.notifications.events import subscribed
from deployments.status import Status

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Verdict:
    """One deployment's final status to write, and (once written) how it went."""

    deployment: Deployment
    status: Status
    reason: str
    also: dict[str, Any] = field(default_factory=dict)
    written: bool = False  # committed, or failed (error)
    error: BaseException | None = None
    batch: int = 0  # how many verdicts its transaction committed (for the logs and tests)


class _Desk:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: list[Verdict] = []
        self._writing = False

    def commit(self, verdict: Verdict, *, shutdown: threading.Event) -> None:
        """Write the verdict, with those waiting beside it; its error raised here."""
        with self._changed:
            self._waiting.append(verdict)
        while True:
            with self._changed:
                while self._writing and not verdict.written:
                    self._changed.wait()
                if verdict.written:
                    break
                self._writing, batch, self._waiting = True, self._waiting, []
            try:
                write_batch(batch, shutdown=shutdown)
            finally:
                with self._changed:
                    self._writing = False
                    self._changed.notify_all()
        if verdict.error is not None:
            raise verdict.error

    def busy(self) -> "_Busy":
        """Hold the desk as a writer would (for tests: verdicts queue meanwhile)."""
        return _Busy(self)


class _Busy:
    def __init__(self, desk: _Desk) -> None:
        self.desk = desk

    def __enter__(self) -> "_Busy":
        with self.desk._changed:
            while self.desk._writing:
                self.desk._changed.wait()
            self.desk._writing = True
        return self

    def __exit__(self, *exc: object) -> None:
        with self.desk._changed:
            self.desk._writing = False
            self.desk._changed.notify_all()

    def waiting(self) -> int:
        with self.desk._changed:
            return len(self.desk._waiting)


_DESK = _Desk()


class _Priority:
    """Verdicts first: while a verdict is being recorded, new work waits a little.

    Following 100 rollouts, the verdicts of the first ones came while the last ones were still
    being claimed and applied, and one interpreter ran it all: a verdict's few statements
    waited for the interpreter behind the claims, and held SQLite's write lock meanwhile (#16:
    up to 70 ms per transaction, the tail of the 100-rollout bench). A user waits for a DONE;
    a claim or a first apply started a moment later is not seen. So the claim loop, a first
    apply and the following thread's timeline write wait (`after_verdicts`) while some
    verdict is between its snapshot and its commit, at most `limit` seconds each time: new
    work is delayed, never starved.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._recording = 0
        self.waiting = 0  # threads waiting in after_verdicts now (for tests)

    @contextmanager
    def recording(self) -> Iterator[None]:
        with self._changed:
            self._recording += 1
        try:
            yield
        finally:
            with self._changed:
                self._recording -= 1
                if not self._recording:
                    self._changed.notify_all()

    def after_verdicts(self, limit: float) -> bool:
        """Wait until no verdict is being recorded, at most `limit` seconds; whether any
        was (for tests)."""
        with self._changed:
            if not self._recording:
                return False
            self.waiting += 1
            try:
                self._changed.wait_for(lambda: not self._recording, timeout=limit)
            finally:
                self.waiting -= 1
            return True


_PRIORITY = _Priority()
YIELD_SECONDS = 0.1  # the longest new work waits for the verdicts being recorded, each time


def waiting() -> int:
    """Threads waiting for the verdicts being recorded now (for tests)."""
    with _PRIORITY._changed:
        return _PRIORITY.waiting


def recording() -> AbstractContextManager[None]:
    """Around the recording of a verdict (its snapshot, its commit): new work waits."""
    return _PRIORITY.recording()


def after_verdicts(limit: float | None = None) -> bool:
    """Before new work (a claim, a first apply, a timeline write): let the verdicts being
    recorded go first, for at most `limit` seconds (YIELD_SECONDS, read now)."""
    return _PRIORITY.after_verdicts(YIELD_SECONDS if limit is None else limit)


def commit(
    deployment: Deployment,
    status: Status,
    *,
    reason: str,
    also: dict[str, Any],
    shutdown: threading.Event,
) -> Verdict:
    """deployment.transition_to(status, reason=reason, also=also), in one transaction with the
    verdicts of this process waiting at the same moment. Raises what the transition raised
    (InvalidTransition: the deployment moved meanwhile; DatabaseUnavailable: the worker
    stopped while the database was away)."""
    verdict = Verdict(deployment, status, reason, also)
    if connections["default"].vendor != "sqlite":
        # PostgreSQL writes the verdicts of different rows side by side, each on its rollout's
        # connection: queued here, each would wait for the others' statements for nothing.
        write_batch([verdict], shutdown=shutdown)
        if verdict.error is not None:
            raise verdict.error
        return verdict
    _DESK.commit(verdict, shutdown=shutdown)
    return verdict


def busy() -> _Busy:
    return _DESK.busy()


def write_batch(batch: list[Verdict], *, shutdown: threading.Event) -> None:
    """Every verdict of the batch in one transaction, each undone alone when it fails; every
    verdict marked written (with its error, if any) whatever happens."""
    seen = [(verdict, verdict.deployment.status) for verdict in batch]

    def reset() -> None:
        for verdict, status in seen:
            verdict.deployment.status = status  # (an aborted attempt may have moved it)
            verdict.error = None

    def attempt() -> None:
        reset()
        if len(batch) == 1:
            # A lone verdict: transition_to's own statements, no transaction around them.
            _write_one(batch[0])
            return
        # Read once for the batch, before its transaction: a verdict with no message to queue
        # is its conditional UPDATE alone (Deployment.transition_to), with no savepoint and
        # no query more while the batch holds SQLite's writer's lock.
        heard = subscribed()
        try:
            with transaction.atomic():
                for verdict in batch:
                    _write_one(verdict, subscribed=heard)
        except _Unusable:
            # A verdict written alone failed in a way that left the transaction unusable
            # (rolled back whole): each verdict then in a transaction of its own.
            reset()
            for verdict in batch:
                _write_one(verdict)

    try:
        retrying(attempt, shutdown=shutdown)
    except BaseException as exc:
        for verdict, status in seen:
            verdict.deployment.status = status
            verdict.error = exc
        raise
    finally:
        for verdict in batch:
            verdict.written, verdict.batch = True, len(batch)
    if len(batch) > 1:
        logger.info("%d verdicts committed in one transaction", len(batch))


def _write_one(verdict: Verdict, *, subscribed: bool | None = None) -> None:
    d = verdict.deployment
    try:
        # In a batch, undone alone when it fails: a status written with more (outbox rows, a
        # FAILED's rollbacks that stick) in transition_to's own atomic block, a savepoint
        # here; a status written alone in its one UPDATE, which changes nothing when it fails
        # (an InvalidTransition: it matched no row).
        d.transition_to(
            verdict.status, reason=verdict.reason, also=verdict.also, subscribed=subscribed
        )
    except CONNECTION_ERRORS:
        raise  # the transaction is lost: retried whole
    except Exception as exc:
        verdict.error = exc
        connection = connections["default"]
        if connection.in_atomic_block and connection.needs_rollback:
            # (No savepoint undid it: only InvalidTransition leaves a batch usable then.)
            raise _Unusable from exc


class _Unusable(Exception):
    """A verdict of a batch failed outside a savepoint of its own: the batch is rolled back."""
