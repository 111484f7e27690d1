"""On PostgreSQL the worker process takes its connections from a pool (database.use_pool, called
first by `manage.py rundeployments`): a rollout gives its connection back while it follows, and
its verdict is written on a session already open, not after a connect (#16: 100 verdicts at once
reconnected in a storm). Tried here in the test process, its settings restored after."""

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections

from deployments.engine.database import use_pool

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pooled() -> Iterator[Any]:
    """This process on use_pool(), as the worker is; the settings and connections restored."""
    if connection.vendor != "postgresql":
        pytest.skip("a pool of the server's connections is for PostgreSQL (CI runs it there)")
    db = connection.settings_dict
    before = {key: db[key] for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "OPTIONS")}
    use_pool()
    try:
        connection.ensure_connection()
        pool = getattr(connection, "pool", None)  # (PostgreSQL's wrapper has one)
        assert pool is not None, "the worker's connections come from a pool"
        pool.wait(timeout=30)  # (its first connections opened: none opens during the test)
        yield pool
    finally:
        connections.close_all()
        connection.close_pool()  # type: ignore[attr-defined]  # (PostgreSQL's wrapper)
        db.update(before)


def _backend_pids() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return {row[0] for row in cursor.fetchall()}


def test_a_connection_given_back_stays_open_for_the_next_thread(pooled: Any) -> None:
    """As a following rollout gives its connection back and a thread writes its verdict later:
    that query runs on a session already open (no connect)."""
    pids: list[int] = []

    def rollout() -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
        connections.close_all()  # (as a rollout does when it begins following)

    thread = threading.Thread(target=rollout)
    thread.start()
    thread.join(30)
    open_now = _backend_pids()
    assert pids[0] in open_now  # kept open by the pool, not closed
    thread = threading.Thread(target=rollout)
    thread.start()
    thread.join(30)
    assert pids[1] in open_now  # (the verdict's thread: a session that was open already)
