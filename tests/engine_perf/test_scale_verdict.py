"""The verdict of a followed rollout is one write (#16): the status, what the rollout saw since
the last timeline write, the verdict's own entry and the time watched, in the UPDATE of the
transition; as many writes for 100 unwritten notes as for one."""

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.engine.worker import Run
from deployments.models import Deployment
from deployments.status import Status
from tests import factories

pytestmark = pytest.mark.django_db


def _updates_at_the_verdict(alice: User, notes: int) -> tuple[int, Deployment]:
    service = factories.make_service()
    deployment = factories.make_deployment(
        service=service,
        environment=factories.make_environment(),
        deployed_by=alice,
        status=Status.STARTED,
        watched_seconds=4.0,
    )
    run = Run(deployment, "me", threading.Event())
    run.note("worker", "applied")  # written: the rollout's notes below are not yet
    run.record([("event", f"Normal Started Pod/web-{index}") for index in range(notes)])
    run.watched_unwritten = 2.5
    with CaptureQueriesContext(connection) as queries:
        run.finish(Status.DONE, "rollout complete", also={"environment_snapshot": {"x": 1}})
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "deployments_deployment"')]
    deployment.refresh_from_db()
    return len(updates), deployment


@pytest.mark.parametrize("notes", [1, 100])
def test_the_verdict_is_one_update_with_the_unwritten_notes_and_the_time_watched(
    alice: User, notes: int
) -> None:
    updates, deployment = _updates_at_the_verdict(alice, notes)
    assert updates == 1
    assert deployment.status == Status.DONE
    assert deployment.environment_snapshot == {"x": 1}
    assert deployment.watched_seconds == pytest.approx(6.5)
    messages = [entry["message"] for entry in deployment.timeline]
    assert messages[0] == "applied"
    assert messages[1 : notes + 1] == [f"Normal Started Pod/web-{i}" for i in range(notes)]
    assert messages[-1] == "DONE: rollout complete"


def test_notes_recorded_while_following_are_not_lost_when_the_status_moved_under_the_worker(
    alice: User,
) -> None:
    service = factories.make_service()
    deployment = factories.make_deployment(
        service=service,
        environment=factories.make_environment(),
        deployed_by=alice,
        status=Status.STARTED,
    )
    run = Run(deployment, "me", threading.Event())
    run.note("worker", "applied")
    run.record([("pod", "web-1: Running, ready")])
    # A cancellation request lands between the verdict and its write.
    Deployment(pk=deployment.pk, status=Status.STARTED).transition_to(
        Status.PENDING_CANCELLATION, reason="bob cancelled"
    )
    run.finish(Status.DONE, "rollout complete")
    deployment.refresh_from_db()
    assert deployment.status == Status.PENDING_CANCELLATION
    assert [e["message"] for e in deployment.timeline] == ["applied", "web-1: Running, ready"]
