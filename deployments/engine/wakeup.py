"""Waking the worker when there is new work, instead of waiting for its next poll.

On PostgreSQL a new deployment sends NOTIFY on commit and idle workers LISTEN, so a request
is claimed within milliseconds. SQLite has no such channel: workers poll (rundeployments
--poll-interval). Polling stays on PostgreSQL too, as the safety net for a lost notification.
"""

import threading
import time
from types import TracebackType
from typing import Any

from django.db import connection

CHANNEL = "apollo_deployments"


def notify_new_work() -> None:
    """Tell listening workers that a deployment is waiting. Call after commit."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")


class WorkSignal:
    """Waits up to a poll interval, returning early when a notification arrives."""

    def __init__(self, shutdown: threading.Event) -> None:
        self.shutdown = shutdown
        self.listener: Any = None

    def __enter__(self) -> "WorkSignal":
        if connection.vendor == "postgresql":
            self.listener = _listen()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.listener is not None:
            self.listener.close()

    def wait(self, timeout: float) -> None:
        if self.listener is None or self.shutdown.is_set():
            self.shutdown.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        # In slices of at most half a second, so that a shutdown is noticed quickly.
        while not self.shutdown.is_set() and (left := deadline - time.monotonic()) > 0:
            for _ in self.listener.notifies(timeout=min(left, 0.5), stop_after=1):
                return


def _listen() -> Any:
    import psycopg

    settings = connection.settings_dict
    listener = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        autocommit=True,
    )
    listener.execute(f"LISTEN {CHANNEL}")
    return listener
