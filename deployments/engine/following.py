"""The database side of following, done once for every rollout a worker process follows.

A following rollout used to write its timeline from its own thread (at most every 0.5 s) and
read its status there (every 0.25 s, for a cancellation): following 100 rollouts, ~200
UPDATEs and ~400 SELECTs a second. On SQLite every UPDATE takes the one writer's lock, whose
busy handler sleeps up to 100 ms at a time: a follower waiting there could not read the event
that ended its rollout, and the verdict's own UPDATE (and the web's requests) queued behind
the others' timeline writes (#16: verdicts visible up to 1.5 s after the rollout completed).

Here one thread does it for all of them: every STATUS_SECONDS one SELECT of their statuses
(`Followed.status`, which the follower reads at its next step to see a cancellation), and every
WRITE_SECONDS one UPDATE of every timeline with something new (`bulk_update`). A follower only
appends to its list, under a lock held for no query: its thread asks nothing of the database
while it follows. A worker killed meanwhile loses at most WRITE_SECONDS of what was seen, as
before. The thread runs while some rollout is followed (it ends with the last one).

A rollout's own writes (the verdict, the notes after it) take its `write_lock`, which this
thread holds while it writes that rollout's timeline: whichever writes second writes the
longer timeline. This thread never writes the timeline of a rollout that left, or of a
deployment that ended (the UPDATE is conditional on a status in progress).

What is written goes to the live page after the write, with no rollout's lock held (`send`):
this thread sent each entry in its own round through the channel layer with every rollout's
lock held, and a verdict decided meanwhile waited for all of them before its UPDATE (#16: the
lag before finished_at was stamped, in a burst of 100 completions). The entries of a rollout
go out in the order they were written, the verdict's after those written before it: each
written entry is queued (`unsent`) under the rollout's write_lock, and the queue is emptied in
one round under its `send_lock`.
"""

import logging
import threading
import time
from dataclasses import dataclass, field

from django.db import connections

from deployments import live
from deployments.engine import verdicts
from deployments.engine.database import CONNECTION_ERRORS, OUTAGE, drop_connection
from deployments.models import Deployment
from deployments.status import Status

logger = logging.getLogger(__name__)
STATUS_SECONDS = 0.25  # how soon a following rollout sees a cancellation request
WRITE_SECONDS = 0.5  # how often what the rollouts saw is written
TIMELINE_LIMIT = 300  # entries kept per deployment (the oldest go first)
Entry = dict[str, str]


@dataclass(eq=False)
class Followed:
    """One rollout's share: what it saw and did not write yet, and its status as last read."""

    deployment: Deployment
    unwritten: list[Entry] = field(default_factory=list)
    status: str = ""  # as last read by the thread ("": not read yet)
    written_at: float = 0.0  # time.monotonic() of the last timeline write
    joined: bool = False  # its timeline is written by the thread
    # Held by whoever writes this deployment's timeline (re-entrant: a verdict that lost a race
    # writes its notes alone).
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    notes_lock: threading.Lock = field(default_factory=threading.Lock)  # guards `unwritten`
    unsent: list[Entry] = field(default_factory=list)  # written, not sent to the page yet
    send_lock: threading.Lock = field(default_factory=threading.Lock)  # one round at a time

    def add(self, entries: list[Entry]) -> None:
        with self.notes_lock:
            self.unwritten += entries

    def take(self) -> list[Entry]:
        with self.notes_lock:
            entries, self.unwritten = self.unwritten, []
        return entries

    def give_back(self, entries: list[Entry]) -> None:
        """Entries whose write failed: first again at the next write."""
        with self.notes_lock:
            self.unwritten[:0] = entries

    def written(self, entries: list[Entry]) -> None:
        """Entries just written (under write_lock): queued for the live page, in order."""
        with self.notes_lock:
            self.unsent += entries

    def send(self, *, status: bool = False) -> None:
        """The written entries not sent yet (then, with status, the deployment's status) to
        the live page in one round, after those queued before them. Call with no write_lock
        held (a round through the channel layer must not delay a write)."""
        with self.send_lock:
            with self.notes_lock:
                entries, self.unsent = self.unsent, []
            if entries or status:
                live.broadcast(self.deployment, entries, status=status)


class _Desk:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._followed: list[Followed] = []
        self._thread: threading.Thread | None = None

    def join(self, followed: Followed) -> None:
        with self._lock:
            self._followed.append(followed)
            followed.joined = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="following")
                self._thread.start()

    def leave(self, followed: Followed) -> None:
        with self._lock:
            followed.joined = False
            if followed in self._followed:
                self._followed.remove(followed)

    def following(self) -> list[Followed]:
        with self._lock:
            return list(self._followed)

    def _run(self) -> None:
        written = time.monotonic()
        try:
            while True:
                with self._lock:
                    if not self._followed:
                        self._thread = None
                        return
                    followed = list(self._followed)
                try:
                    read_statuses(followed)
                    if time.monotonic() - written >= WRITE_SECONDS:
                        verdicts.after_verdicts()
                        written = time.monotonic()
                        write_timelines(followed)
                    OUTAGE.answered()
                except CONNECTION_ERRORS as exc:
                    OUTAGE.failed(exc)  # (each follower sees no cancellation meanwhile)
                    drop_connection()
                except Exception:  # this thread must never die silently
                    logger.exception("the following thread failed a step")
                time.sleep(STATUS_SECONDS)
        finally:
            connections.close_all()


_DESK = _Desk()


def join(followed: Followed) -> None:
    """Follow: from now on its notes are written and its status read by the thread."""
    _DESK.join(followed)


def leave(followed: Followed) -> None:
    """Stop following (idempotent): the thread writes nothing more of it (a write of it in
    progress ends before its write_lock is free)."""
    _DESK.leave(followed)


def following() -> list[Followed]:
    """The rollouts followed now (for tests)."""
    return _DESK.following()


def read_statuses(followed: list[Followed]) -> None:
    """One SELECT: the status of every followed deployment."""
    pks = [each.deployment.pk for each in followed]
    statuses = dict(Deployment.objects.filter(pk__in=pks).values_list("pk", "status"))
    for each in followed:
        each.status = statuses.get(each.deployment.pk, each.status)


def write_timelines(followed: list[Followed]) -> None:
    """One UPDATE: the new entries of every followed deployment that has some, each after
    those written before (a rollout writing its own timeline now is left for the next time),
    then the entries sent to the live page, one round per rollout, once every lock is free."""
    for each in _write_timelines(followed):
        each.send()


def _write_timelines(followed: list[Followed]) -> list[Followed]:
    """The UPDATE of write_timelines: the rollouts written, their entries queued to send."""
    held = [each for each in followed if each.write_lock.acquire(blocking=False)]
    try:
        batch = []
        for each in held:
            # Read once its lock is held: one that left before writes itself once it has the
            # lock; one that leaves after waits for this write.
            if not each.joined:
                continue
            entries = each.take()
            if entries:
                timeline = [*each.deployment.timeline, *entries][-TIMELINE_LIMIT:]
                batch.append((each, entries, timeline))
        if not batch:
            return []
        rows = [Deployment(pk=each.deployment.pk, timeline=timeline) for each, _, timeline in batch]
        try:
            Deployment.objects.filter(status__in=Status.in_progress()).bulk_update(
                rows, ["timeline"]
            )
        except BaseException:
            for each, entries, _ in batch:
                each.give_back(entries)
            raise
        now = time.monotonic()
        for each, entries, timeline in batch:
            each.deployment.timeline, each.written_at = timeline, now
            # (Queued with the rollout's lock held: before any verdict's entries.)
            each.written(entries)
        return [each for each, _, _ in batch]
    finally:
        for each in held:
            each.write_lock.release()
