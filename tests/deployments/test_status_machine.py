import itertools

import pytest
from django.contrib.auth.models import User

from deployments.models import Deployment, InvalidTransition
from deployments.status import TRANSITIONS, Status
from tests import factories

ALLOWED = {
    (Status.PENDING, Status.STARTED),
    (Status.PENDING, Status.CANCELED),
    (Status.PENDING, Status.FAILED),
    (Status.STARTED, Status.DONE),
    (Status.STARTED, Status.FAILED),
    (Status.STARTED, Status.PENDING_CANCELLATION),
    (Status.PENDING_CANCELLATION, Status.CANCELING),
    (Status.PENDING_CANCELLATION, Status.FAILED),
    (Status.CANCELING, Status.CANCELED),
    (Status.CANCELING, Status.FAILED),
}
ALL_PAIRS = list(itertools.product(Status, Status))


def test_the_statuses_are_those_of_the_public_contract() -> None:
    assert [s.value for s in Status] == [
        "PENDING",
        "STARTED",
        "DONE",
        "FAILED",
        "PENDING_CANCELLATION",
        "CANCELING",
        "CANCELED",
    ]


def test_the_table_allows_exactly_the_documented_moves() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


def test_terminal_statuses_are_done_failed_and_canceled() -> None:
    assert {s for s in Status if s.is_terminal} == {Status.DONE, Status.FAILED, Status.CANCELED}
    assert set(Status.in_progress()) == set(Status) - {Status.DONE, Status.FAILED, Status.CANCELED}


@pytest.fixture
def deployment(db: None, alice: User) -> Deployment:
    return factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=alice,
        status=Status.PENDING,
    )


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS, ids=lambda s: str(s))
def test_transition_to_allows_and_refuses_each_pair(
    deployment: Deployment, current: Status, new: Status
) -> None:
    type(deployment).objects.filter(pk=deployment.pk).update(status=current)
    deployment.status = current
    if (current, new) in ALLOWED:
        deployment.transition_to(new, reason="because")
        deployment.refresh_from_db()
        assert deployment.status == new
        assert deployment.status_reason == "because"
    else:
        with pytest.raises(InvalidTransition):
            deployment.transition_to(new)
        deployment.refresh_from_db()
        assert deployment.status == current


def test_a_stale_instance_cannot_move_a_row_someone_else_moved(
    deployment: Deployment,
) -> None:
    other = type(deployment).objects.get(pk=deployment.pk)
    other.transition_to(Status.STARTED)
    # This instance still believes PENDING; its move must lose, not overwrite.
    with pytest.raises(InvalidTransition, match="no longer PENDING"):
        deployment.transition_to(Status.CANCELED)
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTED
