"""The worker's writes to SQLite take turns in the process, a verdict before the other writes
waiting with it (#16, writes.py); the following thread waits for its turn without holding the
rollouts' locks, which their verdicts need."""

import threading
import time
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.engine import following, writes
from deployments.status import Status
from tests import factories

WAIT = 30.0
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="turns are for SQLite's one writer only"
    ),
]


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _in_turn(order: list[str], name: str, *, first: bool) -> threading.Thread:
    def write() -> None:
        with writes.turn(first=first):
            order.append(name)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_a_verdict_waiting_writes_before_a_timeline_write_that_waited_longer() -> None:
    order: list[str] = []
    with writes.turn():  # another write in progress
        timeline = _in_turn(order, "timeline", first=False)
        _until(lambda: writes.waiting() == 1, "the timeline write did not wait")
        verdict = _in_turn(order, "verdict", first=True)
        _until(lambda: writes.waiting() == 2, "the verdict did not wait")
        with writes.turn():  # re-entrant: this thread does not wait for itself
            assert order == []
    timeline.join(WAIT)
    verdict.join(WAIT)
    assert order == ["verdict", "timeline"]


def test_the_following_thread_waits_for_its_turn_without_holding_the_rollouts_locks(
    alice: User,
) -> None:
    deployment = factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=alice,
        status=Status.STARTED,
    )
    book = following.Followed(deployment, joined=True)
    book.add([{"at": "now", "source": "pod", "message": "web-1: Running, ready"}])
    errors: list[BaseException] = []

    def write() -> None:
        try:
            following.write_timelines([book])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write)
    with writes.turn(first=True):  # a verdict being written
        thread.start()
        _until(lambda: writes.waiting() == 1, "the following thread did not wait")
        # The rollout's own verdict can take its lock meanwhile.
        assert book.write_lock.acquire(timeout=WAIT)
        book.write_lock.release()
    thread.join(WAIT)
    assert errors == []
    deployment.refresh_from_db()
    assert [e["message"] for e in deployment.timeline] == ["web-1: Running, ready"]
