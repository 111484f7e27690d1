"""What rollouts see while a worker follows them is written by one thread for all of them (#16,
deployments/engine/following.py): one UPDATE for every timeline and one SELECT for every
status, however many rollouts; the follower's own thread asks nothing of the database; a
verdict written meanwhile is never overwritten by an older timeline; a cancellation is seen."""

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.engine import following
from deployments.engine.following import Followed
from deployments.models import Deployment
from deployments.status import Status
from tests import factories
from tests.workers import until


def _entry(message: str) -> dict[str, str]:
    return {"at": "2026-11-30T16:00:00+00:00", "source": "pod", "message": message}


def _timeline(deployment: Deployment) -> list[str]:
    deployment.refresh_from_db()
    return [entry["message"] for entry in deployment.timeline]


@pytest.mark.django_db(transaction=True)
def test_a_followed_rollouts_notes_reach_the_database_without_its_thread_writing(
    alice: User,
) -> None:
    (deployment,) = factories.make_started_deployments(alice, 1)
    book = Followed(deployment)
    following.join(book)
    try:
        book.add([_entry("web-1: Running, ready")])
        until(lambda: _timeline(deployment) == ["web-1: Running, ready"])
        assert book.unwritten == []
    finally:
        following.leave(book)
    until(lambda: book not in following.following())


@pytest.mark.django_db(transaction=True)
def test_a_cancellation_requested_while_following_is_seen_by_the_rollout(alice: User) -> None:
    (deployment,) = factories.make_started_deployments(alice, 1)
    book = Followed(deployment)
    following.join(book)
    try:
        until(lambda: book.status == Status.STARTED)
        Deployment(pk=deployment.pk, status=Status.STARTED).transition_to(
            Status.PENDING_CANCELLATION, reason="bob cancelled"
        )
        until(lambda: book.status == Status.PENDING_CANCELLATION)
    finally:
        following.leave(book)


@pytest.mark.django_db
@pytest.mark.parametrize("rollouts", [1, 20])
def test_every_timeline_is_one_update_and_every_status_one_select(
    alice: User, rollouts: int
) -> None:
    deployments = factories.make_started_deployments(alice, rollouts)
    books = [Followed(deployment, joined=True) for deployment in deployments]
    for index, book in enumerate(books):
        book.add([_entry(f"web-{index}: Pending"), _entry(f"web-{index}: Running")])
    with CaptureQueriesContext(connection) as queries:
        following.read_statuses(books)
        following.write_timelines(books)
    assert len(queries) == 2, [q["sql"] for q in queries]
    assert {book.status for book in books} == {Status.STARTED}
    for index, deployment in enumerate(deployments):
        assert _timeline(deployment) == [f"web-{index}: Pending", f"web-{index}: Running"]


@pytest.mark.django_db
def test_a_rollout_that_left_or_ended_is_not_written_over(alice: User) -> None:
    left, ended = factories.make_started_deployments(alice, 2)
    books = [Followed(left), Followed(ended, joined=True)]
    for book in books:
        book.add([_entry("seen before the verdict")])
    # `ended`'s verdict was written (by another worker: this one still follows it).
    Deployment(pk=ended.pk, status=Status.STARTED).transition_to(Status.DONE, reason="done")
    following.write_timelines(books)
    assert _timeline(left) == []
    assert _timeline(ended) == []
    assert books[0].unwritten == [_entry("seen before the verdict")]  # its own thread writes it


@pytest.mark.django_db
def test_a_rollout_writing_its_own_timeline_is_left_for_the_next_time(alice: User) -> None:
    (deployment,) = factories.make_started_deployments(alice, 1)
    book = Followed(deployment, joined=True)
    book.add([_entry("web-1: Running")])
    with book.write_lock:  # (the verdict being written)
        other = threading.Thread(target=following.write_timelines, args=([book],))
        other.start()
        other.join(30)
    assert book.unwritten == [_entry("web-1: Running")]
    following.write_timelines([book])
    assert _timeline(deployment) == ["web-1: Running"]
