"""request_deployment and cancel_deployment: the gate, validation and the one-in-progress rule."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied

from deployments.models import DeployableVersion, Deployment, InvalidTransition, Service
from deployments.services.deploy import cancel_deployment, request_deployment
from deployments.status import Status
from environments.models import Environment
from history.models import AuditEvent
from permissions.models import Blocker
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


@pytest.fixture
def production() -> Environment:
    return factories.make_environment(
        "production", availability="production", require_deployment_message=True
    )


@pytest.fixture
def service() -> Service:
    return factories.make_service("checkout")


@pytest.fixture
def version(service: Service) -> DeployableVersion:
    return factories.make_version(service, branch="main")


def test_bob_creates_a_pending_deployment_in_staging(
    bob: User, service: Service, staging: Environment, version: DeployableVersion
) -> None:
    outcome = request_deployment(
        user=bob, service=service, environment=staging, version=version, message="ship it"
    )
    assert outcome.kind == "created"
    deployment = outcome.deployment
    assert deployment is not None
    assert (deployment.status, deployment.message, deployment.deployed_by) == (
        Status.PENDING,
        "ship it",
        bob,
    )
    assert f"image: {version.image}" in deployment.rendered_manifests
    assert AuditEvent.objects.filter(action="deployment.requested", actor=bob).count() == 1


@pytest.mark.parametrize("persona", ["carol", "mallory"])
def test_personas_without_a_grant_are_refused_with_the_explanation(
    personas: dict[str, User],
    persona: str,
    service: Service,
    staging: Environment,
    version: DeployableVersion,
) -> None:
    outcome = request_deployment(
        user=personas[persona], service=service, environment=staging, version=version
    )
    assert outcome.kind == "refused"
    assert persona in outcome.reason
    assert not Deployment.objects.exists()


def test_bob_is_refused_in_production(
    bob: User, service: Service, production: Environment, version: DeployableVersion
) -> None:
    outcome = request_deployment(
        user=bob, service=service, environment=production, version=version, message="x"
    )
    assert outcome.kind == "refused"
    assert "production" in outcome.reason


def test_production_requires_a_message(
    alice: User, service: Service, production: Environment, version: DeployableVersion
) -> None:
    outcome = request_deployment(
        user=alice, service=service, environment=production, version=version, message="  "
    )
    assert (outcome.kind, outcome.reason) == ("invalid", "production requires a deployment message")
    assert not Deployment.objects.exists()


def test_a_version_of_another_service_is_invalid(
    alice: User, service: Service, staging: Environment
) -> None:
    other = factories.make_version(factories.make_service("payments"))
    outcome = request_deployment(user=alice, service=service, environment=staging, version=other)
    assert outcome.kind == "invalid"
    assert "is not a version of checkout" in outcome.reason


def test_a_service_deployed_per_group_needs_a_group(alice: User, staging: Environment) -> None:
    sharded = factories.make_service("shards", deployed_per_group=True)
    outcome = request_deployment(
        user=alice, service=sharded, environment=staging, version=factories.make_version(sharded)
    )
    assert outcome.kind == "invalid"
    assert "deployed per group" in outcome.reason


def test_broken_templates_are_invalid_and_create_nothing(alice: User, staging: Environment) -> None:
    broken = factories.make_service("broken", deployment_template="kind: Deployment\nspec: [")
    outcome = request_deployment(
        user=alice, service=broken, environment=staging, version=factories.make_version(broken)
    )
    assert outcome.kind == "invalid"
    assert "cannot be rendered" in outcome.reason
    assert not Deployment.objects.exists()


def test_a_second_request_for_the_same_target_is_already_in_progress(
    alice: User, service: Service, staging: Environment, version: DeployableVersion
) -> None:
    first = request_deployment(user=alice, service=service, environment=staging, version=version)
    second = request_deployment(user=alice, service=service, environment=staging, version=version)
    assert (first.kind, second.kind) == ("created", "in_progress")
    assert "already in progress" in second.reason
    assert Deployment.objects.count() == 1


def test_the_source_version_is_the_last_successful_one(
    alice: User, service: Service, staging: Environment, version: DeployableVersion
) -> None:
    factories.make_deployment(
        service=service, environment=staging, deployed_by=alice, version=version
    )
    newer = factories.make_version(service)
    outcome = request_deployment(user=alice, service=service, environment=staging, version=newer)
    assert outcome.deployment is not None
    assert outcome.deployment.source_version == version


def _blocker(environment: Environment, **extra: object) -> Blocker:
    return Blocker.objects.create(
        name="freeze", kind="unconditional", environment=environment, config={}, **extra
    )


def test_a_blocker_refuses_and_names_itself(
    bob: User, service: Service, staging: Environment, version: DeployableVersion
) -> None:
    _blocker(staging)
    outcome = request_deployment(user=bob, service=service, environment=staging, version=version)
    assert outcome.kind == "blocked"
    assert [r.name for r in outcome.refusals] == ["freeze"]
    assert not outcome.may_override
    # A reason does not help without the override verb.
    again = request_deployment(
        user=bob, service=service, environment=staging, version=version, override_reason="please"
    )
    assert again.kind == "blocked"
    assert not Deployment.objects.exists()


def test_override_with_a_reason_is_recorded(
    bob: User, service: Service, staging: Environment, version: DeployableVersion
) -> None:
    _blocker(staging)
    grant(actor=None, user=bob, verbs=[Verb.OVERRIDE_BLOCKERS], environment=staging)
    without = request_deployment(user=bob, service=service, environment=staging, version=version)
    assert (without.kind, without.may_override) == ("blocked", True)
    outcome = request_deployment(
        user=bob,
        service=service,
        environment=staging,
        version=version,
        override_reason="hotfix for incident 42",
    )
    assert outcome.kind == "created"
    assert outcome.deployment is not None
    assert outcome.deployment.override_reason == "hotfix for incident 42"
    assert outcome.deployment.overridden_blockers[0]["name"] == "freeze"


def test_carol_cannot_cancel_and_nothing_changes(
    carol: User, alice: User, service: Service, staging: Environment, version: DeployableVersion
) -> None:
    outcome = request_deployment(user=alice, service=service, environment=staging, version=version)
    assert outcome.deployment is not None
    with pytest.raises(PermissionDenied):
        cancel_deployment(user=carol, deployment=outcome.deployment)
    outcome.deployment.refresh_from_db()
    assert outcome.deployment.status == Status.PENDING


def test_cancelling_a_pending_deployment_ends_it_canceled(
    bob: User, service: Service, staging: Environment, version: DeployableVersion
) -> None:
    deployment = request_deployment(
        user=bob, service=service, environment=staging, version=version
    ).deployment
    assert deployment is not None
    cancel_deployment(user=bob, deployment=deployment)
    deployment.refresh_from_db()
    assert deployment.status == Status.CANCELED
    assert deployment.finished_at is not None


def test_a_started_first_deployment_has_nothing_to_roll_back_to(
    alice: User, service: Service, staging: Environment, version: DeployableVersion
) -> None:
    deployment = factories.make_deployment(
        service=service,
        environment=staging,
        deployed_by=alice,
        version=version,
        status=Status.STARTED,
    )
    with pytest.raises(InvalidTransition, match="nothing ran before"):
        cancel_deployment(user=alice, deployment=deployment)


def test_a_finished_deployment_cannot_be_cancelled(
    alice: User, service: Service, staging: Environment, version: DeployableVersion
) -> None:
    deployment = factories.make_deployment(
        service=service, environment=staging, deployed_by=alice, version=version
    )
    with pytest.raises(InvalidTransition, match="a done deployment cannot be cancelled"):
        cancel_deployment(user=alice, deployment=deployment)
