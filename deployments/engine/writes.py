"""The worker's writes to SQLite take turns in the process, verdicts first.

SQLite has one writer. A thread that finds the lock taken is put to sleep by SQLite's busy
handler, for longer and longer (up to 100 ms a time), and tries again when it wakes: whoever
tries at the right moment gets the lock, not whoever waited longest. Following 100 rollouts,
the worker's own threads were its main competitors: the rollouts' timeline UPDATEs, the
following thread's, the heartbeat's and the verdicts' (#16, the statements of one run of
scale_bench --rollouts 100 timed: 445 timeline UPDATEs waited 99.7 s in all, up to 6 s
each, and a verdict behind them).

Here those writes queue in the process instead (`turn()`): one at a time, woken at once when
the previous one ends, and a verdict (`turn(first=True)`) before any other write that waits
with it. SQLite's lock then only arbitrates between processes (the web, another worker).
On PostgreSQL, where writers of different rows do not wait for each other, a turn is free.

A turn is taken around one statement or one short transaction, never around a Kubernetes
call, and re-entrant in a thread (a write inside another's turn does not wait for itself).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections


class _Turns:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._holder: int | None = None  # the thread writing now
        self._depth = 0
        self._first_waiting = 0  # verdicts waiting for their turn
        self._waiting = 0  # writes waiting for their turn, verdicts included

    @contextmanager
    def turn(self, *, first: bool = False) -> Iterator[None]:
        me = threading.get_ident()
        with self._changed:
            if self._holder == me:
                self._depth += 1
            else:
                self._first_waiting += first
                self._waiting += 1
                try:
                    while self._holder is not None or (not first and self._first_waiting):
                        self._changed.wait()
                finally:
                    self._first_waiting -= first
                    self._waiting -= 1
                self._holder, self._depth = me, 1
        try:
            yield
        finally:
            with self._changed:
                self._depth -= 1
                if not self._depth:
                    self._holder = None
                    self._changed.notify_all()

    def waiting(self) -> int:
        with self._changed:
            return self._waiting


_TURNS = _Turns()


@contextmanager
def turn(*, first: bool = False) -> Iterator[None]:
    """This thread's turn to write (first: a verdict, before the other writes waiting)."""
    if connections["default"].vendor != "sqlite":
        yield
        return
    with _TURNS.turn(first=first):
        yield


def waiting() -> int:
    """How many writes wait for their turn (for tests)."""
    return _TURNS.waiting()
