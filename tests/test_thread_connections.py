"""A connection that a thread outliving its test still holds is closed before PostgreSQL is asked
to drop the test database (tests/thread_connections.py), which it refuses while anyone is
connected: "database "test_test" is being accessed by other users"."""

import threading

import pytest
from django.db import connection, connections

from tests.thread_connections import close_other_threads_connections
from tests.workers import until

pytestmark = pytest.mark.django_db(transaction=True)


def _backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}


def test_a_connection_held_by_a_lingering_thread_is_closed_and_ours_is_kept() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL refuses to drop a database in use (CI runs it there)")
    opened = threading.Event()
    release = threading.Event()
    pid: list[int] = []

    def linger() -> None:  # as asgiref's executor thread does: a query, then the thread stays
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid.append(cursor.fetchone()[0])
        opened.set()
        release.wait(60)

    thread = threading.Thread(target=linger, daemon=True)
    thread.start()
    try:
        assert opened.wait(30)
        assert pid[0] in _backends()
        # Only that thread's: another test's thread (asgiref's executor) keeps its own.
        assert close_other_threads_connections(opened_by=thread.ident) == 1
        until(lambda: pid[0] not in _backends())  # (a backend ends a moment after its close)
        assert connection.is_usable()  # the test's own connection is kept
    finally:
        release.set()
        thread.join(30)
