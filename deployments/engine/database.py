"""The worker and its database: a lost or refused connection is waited out, never fatal.

A worker holds rollouts that the cluster carries on with whether Apollo's database answers or
not; dying with the connection would leave them STARTED until someone restarts it. So every
database call of the worker goes through `retrying`: on a connection error the thread's
connection is dropped (Django opens a new one on the next query) and the call is repeated with
a back-off, until the database answers again or the worker stops. The outage is logged once
per process (not once per thread and attempt), and its end once.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection, connections

logger = logging.getLogger(__name__)
T = TypeVar("T")
# What a lost, refused or terminated connection raises (psycopg's errors are wrapped in these;
# a terminated backend is an OperationalError on the next query, then an InterfaceError).
CONNECTION_ERRORS = (OperationalError, InterfaceError)
FIRST_DELAY, MAX_DELAY = 0.2, 5.0


class DatabaseUnavailable(Exception):
    """The worker stopped while its database did not answer: what it was doing is left for
    the next worker (the lease or the advisory lock says when)."""


class _Outage:
    """One outage per process, shared by every thread that meets it: logged at its start and
    at its end. A thread that finds its connection dead only after the others reconnected is
    the same outage: not logged again within QUIET seconds of the last report."""

    QUIET = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self._reported = float("-inf")
        self._said = False  # this outage's start was logged

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = now = time.monotonic()
            self._said = now - self._reported >= self.QUIET
            if not self._said:
                return
            self._reported = now
        logger.warning(
            "database unavailable (%s: %s); the worker retries and carries on",
            type(exc).__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
        )

    def answered(self) -> None:
        if self.since is None:  # the common case, without the lock
            return
        with self._lock:
            since, self.since = self.since, None
            said, self._said = self._said, False
        if since is not None and said:
            logger.warning("database reachable again after %.1f s", time.monotonic() - since)


OUTAGE = _Outage()


def drop_connection() -> None:
    """Forget this thread's broken connection; the next query opens a new one."""
    try:
        connection.close()
    except Exception:  # (closing a dead connection may fail in many ways)
        connection.connection = None


def retrying(call: Callable[[], T], *, shutdown: threading.Event) -> T:
    """call() until it does not fail for a lost connection; DatabaseUnavailable if the worker
    stops first. Other errors (a bug, a constraint) go to the caller as they are."""
    delay = FIRST_DELAY
    while True:
        try:
            result = call()
        except CONNECTION_ERRORS as exc:
            OUTAGE.failed(exc)
            drop_connection()
            if shutdown.wait(delay):
                raise DatabaseUnavailable(str(exc)) from exc
            delay = min(delay * 2, MAX_DELAY)
            continue
        OUTAGE.answered()
        return result


# On PostgreSQL the worker process takes its connections from a pool (psycopg_pool through
# Django's OPTIONS["pool"]). A following rollout gives its connection back (worker.Run.follow)
# and needs one again for its verdict: 100 rollouts completing together each opened a new one
# at once (a fork and authentication on the server each), and the verdicts waited for that
# storm (#16). From the pool the verdict takes one already open. max_size bounds the worker's
# connections (the server's max_connections, 100 by default, is shared by every process); those
# opened beyond min_size close after 10 idle minutes (psycopg_pool's max_idle). Nothing may leave
# session state on a pooled connection: the advisory locks (heartbeat.LockSession) and the
# LISTEN (wakeup._PostgresListener) have connections of their own, outside the pool. Only the
# worker: a pool's slot is lost for good when a thread ends without closing its connection, and
# every thread of the worker closes its own (the web's threads were not all audited for it: the
# whole suite on PostgreSQL exhausted a process-wide pool).
POOL = {"min_size": 2, "max_size": 20}


def use_pool() -> None:
    """From now on this process's connections come from a pool, on PostgreSQL (elsewhere it
    does nothing). Call it first thing in the worker process, before its threads start."""
    connections.close_all()
    db = connections["default"].settings_dict  # (the dict every thread's wrapper reads)
    if not db["ENGINE"].endswith("postgresql"):
        return
    db["CONN_MAX_AGE"] = 0  # (the pool keeps them; Django refuses both)
    # Checked as it is taken (an empty query): one the server ended meanwhile (a restart, a
    # terminated backend) is replaced there, not handed to a verdict that would fail on it.
    db["CONN_HEALTH_CHECKS"] = True
    db["OPTIONS"] = {**db.get("OPTIONS", {}), "pool": dict(POOL)}
