"""Which events the services queue: requested, overridden, blocked, reverted, each statuses'."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.models import Deployment, Service
from deployments.notifications.models import Delivery, Subscription
from deployments.notifications.services import save_subscription
from deployments.services.deploy import (
    Target,
    cancel_deployment,
    check_targets,
    request_deployment,
    request_deployments,
    revert_deployment,
)
from deployments.status import Status
from environments.models import Environment
from permissions.models import Blocker
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _subscribed(settings: Any, alice: User) -> Subscription:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    return save_subscription(
        actor=alice,
        subscription=Subscription(name="all", kind=Subscription.Kind.SLACK),
        url="http://127.0.0.1:9/hook",
    )


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


def queued() -> list[str]:
    return list(Delivery.objects.order_by("id").values_list("event", flat=True))


def test_a_request_then_its_cancel_are_queued(
    bob: User, checkout: Service, staging: Environment
) -> None:
    outcome = request_deployment(
        user=bob, service=checkout, environment=staging, version=factories.make_version(checkout)
    )
    assert outcome.deployment is not None
    cancel_deployment(user=bob, deployment=outcome.deployment)
    assert queued() == ["requested", "canceled"]
    payload = Delivery.objects.order_by("id").first().payload  # type: ignore[union-attr]
    assert payload["deployment"]["deployed_by"] == "bob"


def test_a_blocked_request_and_an_override_are_queued(
    bob: User, checkout: Service, staging: Environment
) -> None:
    Blocker.objects.create(name="freeze", kind="unconditional", environment=staging, config={})
    grant(actor=None, user=bob, verbs=[Verb.OVERRIDE_BLOCKERS], environment=staging)
    version = factories.make_version(checkout)
    blocked = request_deployment(user=bob, service=checkout, environment=staging, version=version)
    assert blocked.kind == "blocked"
    assert queued() == ["blocked"]
    request = Delivery.objects.get().payload["request"]
    assert (request["service"], request["requested_by"]) == ("checkout", "bob")
    assert "freeze" in request["reason"]
    request_deployment(
        user=bob, service=checkout, environment=staging, version=version, override_reason="fix"
    )
    assert queued() == ["blocked", "requested", "overridden"]


def test_a_revert_is_queued_as_reverted(
    alice: User, checkout: Service, staging: Environment
) -> None:
    old = factories.make_deployment(service=checkout, environment=staging, deployed_by=alice)
    bad = factories.make_deployment(
        service=checkout,
        environment=staging,
        deployed_by=alice,
        status=Status.FAILED,
        source_version=old.version,
    )
    outcome = revert_deployment(user=alice, deployment=bad)
    assert outcome is not None
    assert outcome.deployment is not None
    assert queued() == ["requested", "reverted"]
    assert Delivery.objects.get(event="reverted").payload["note"] == f"revert of #{bad.pk}"


def test_a_receiver_that_is_down_does_not_stop_a_status_change(
    alice: User, checkout: Service, staging: Environment
) -> None:
    d = factories.make_deployment(
        service=checkout, environment=staging, deployed_by=alice, status=Status.PENDING
    )
    d.transition_to(Status.STARTED)
    d.transition_to(Status.DONE)
    d.refresh_from_db()
    assert d.status == Status.DONE
    assert queued() == ["started", "done"]


def test_a_preflight_check_of_a_blocked_target_notifies_nobody(
    bob: User, checkout: Service, staging: Environment
) -> None:
    Blocker.objects.create(name="freeze", kind="unconditional", environment=staging, config={})
    version = factories.make_version(checkout)
    target = Target(checkout, staging, None, version)
    [outcome] = check_targets(user=bob, targets=[target])
    assert outcome.kind == "blocked"
    assert queued() == []
    [requested] = request_deployments(user=bob, targets=[target])
    assert requested.kind == "blocked"
    assert queued() == ["blocked"]


def test_a_bare_instance_moved_by_the_workers_claim_is_described_from_its_row(
    alice: User, checkout: Service, staging: Environment
) -> None:
    # The worker's claim moves Deployment(pk=, status=) without loading the row: this raised
    # inside the worker's claim (its thread died) before the row was read again.
    d = factories.make_deployment(
        service=checkout, environment=staging, deployed_by=alice, status=Status.PENDING
    )
    Deployment(pk=d.pk, status=Status.PENDING).transition_to(Status.STARTED)
    delivery = Delivery.objects.get()
    assert delivery.event == "started"
    assert delivery.payload["deployment"]["service"] == "checkout"
    assert delivery.payload["deployment"]["status"] == "STARTED"
