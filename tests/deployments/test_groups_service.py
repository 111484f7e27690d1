"""The group services: who may define groups, what is recorded, and when scaling is refused."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError

from deployments.models import Group, Service
from deployments.services.deploy import request_deployment
from deployments.services.groups import (
    ScalingRefused,
    create_group,
    delete_group,
    scale_group,
    update_group,
)
from deployments.status import Status
from environments.models import Environment
from history.models import AuditEvent
from permissions.models import Blocker
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage() -> Environment:
    return factories.make_environment("stage-1", availability="staging")


@pytest.fixture
def ingest() -> Service:
    return factories.make_service("ingest", deployed_per_group=True)


@pytest.fixture
def eu(ingest: Service, stage: Environment) -> Group:
    return Group.objects.create(service=ingest, environment=stage, name="eu", scaling_factor=2)


def _deployed(group: Group, user: User) -> None:
    factories.make_deployment(
        service=group.service,
        environment=group.environment,
        deployed_by=user,
        group=group,
        group_key=group.name,
    )


def test_alice_creates_a_group_and_it_is_recorded(
    alice: User, ingest: Service, stage: Environment
) -> None:
    group = create_group(
        user=alice,
        service=ingest,
        environment=stage,
        name="us",
        scaling_factor=3,
        variables={"shard": "us-1"},
    )
    assert (group.name, group.scaling_factor, group.variables) == ("us", 3, {"shard": "us-1"})
    event = AuditEvent.objects.get(action="group.created")
    assert event.actor == alice
    assert event.summary == "Created group ingest/us in stage-1"


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
def test_only_users_with_manage_define_groups(
    persona: str, personas: dict[str, User], ingest: Service, stage: Environment, eu: Group
) -> None:
    user = personas[persona]
    with pytest.raises(PermissionDenied):
        create_group(user=user, service=ingest, environment=stage, name="us")
    with pytest.raises(PermissionDenied):
        update_group(user=user, group=eu, variables={"shard": "x"})
    with pytest.raises(PermissionDenied):
        delete_group(user=user, group=eu)
    assert list(Group.objects.values_list("name", flat=True)) == ["eu"]
    assert not AuditEvent.objects.filter(action__startswith="group.").exists()


def test_a_duplicate_or_badly_named_group_is_refused(
    alice: User, ingest: Service, stage: Environment, eu: Group
) -> None:
    with pytest.raises(ValidationError):
        create_group(user=alice, service=ingest, environment=stage, name="eu")
    with pytest.raises(ValidationError):
        create_group(user=alice, service=ingest, environment=stage, name="Not_DNS")


def test_a_deployed_group_cannot_be_removed_but_a_new_one_can(
    alice: User, ingest: Service, stage: Environment, eu: Group
) -> None:
    _deployed(eu, alice)
    with pytest.raises(ValidationError, match="1 deployment"):
        delete_group(user=alice, group=eu)
    spare = create_group(user=alice, service=ingest, environment=stage, name="spare")
    delete_group(user=alice, group=spare)
    assert list(Group.objects.values_list("name", flat=True)) == ["eu"]
    assert AuditEvent.objects.filter(action="group.deleted").count() == 1


def test_unlocking_clears_the_reason_and_no_change_records_nothing(alice: User, eu: Group) -> None:
    update_group(user=alice, group=eu, scaling_locked=True, scaling_lock_reason="peak")
    update_group(user=alice, group=eu, scaling_locked=True, scaling_lock_reason="peak")
    update_group(user=alice, group=eu, scaling_locked=False)
    eu.refresh_from_db()
    assert (eu.scaling_locked, eu.scaling_lock_reason) == (False, "")
    assert AuditEvent.objects.filter(action="group.changed").count() == 2


# -- scaling ----------------------------------------------------------------------------------


def test_carol_and_mallory_may_not_scale(
    carol: User, mallory: User, alice: User, eu: Group
) -> None:
    _deployed(eu, alice)
    for user in (carol, mallory):
        with pytest.raises(PermissionDenied):
            scale_group(user=user, group=eu, replicas=5)
    eu.refresh_from_db()
    assert eu.scaling_factor == 2


def test_a_locked_group_is_refused_with_the_reason(alice: User, eu: Group) -> None:
    _deployed(eu, alice)
    update_group(user=alice, group=eu, scaling_locked=True, scaling_lock_reason="peak season")
    with pytest.raises(ScalingRefused, match="ingest/eu in stage-1 is locked: peak season"):
        scale_group(user=alice, group=eu, replicas=5)


def test_a_blocker_refuses_scaling_naming_itself(bob: User, alice: User, eu: Group) -> None:
    _deployed(eu, alice)
    Blocker.objects.create(name="Freeze", kind=Blocker.Kind.UNCONDITIONAL, availability="staging")
    with pytest.raises(ScalingRefused, match="blocked by Freeze"):
        scale_group(user=bob, group=eu, replicas=5)
    eu.refresh_from_db()
    assert eu.scaling_factor == 2
    assert not AuditEvent.objects.filter(action="group.scaled").exists()


def test_scaling_waits_for_a_deployment_in_progress(alice: User, eu: Group) -> None:
    _deployed(eu, alice)
    outcome = request_deployment(
        user=alice,
        service=eu.service,
        environment=eu.environment,
        version=factories.make_version(eu.service),
        group=eu,
    )
    assert outcome.deployment is not None
    assert outcome.deployment.status == Status.PENDING
    with pytest.raises(ScalingRefused, match="in progress"):
        scale_group(user=alice, group=eu, replicas=5)


def test_replicas_out_of_range_are_refused(alice: User, eu: Group) -> None:
    with pytest.raises(ValueError, match="between 0 and 50"):
        scale_group(user=alice, group=eu, replicas=51)


def test_a_group_never_deployed_only_stores_its_new_scaling_factor(bob: User, eu: Group) -> None:
    assert scale_group(user=bob, group=eu, replicas=4) == ""
    eu.refresh_from_db()
    assert eu.scaling_factor == 4
    event = AuditEvent.objects.get(action="group.scaled")
    assert "first deployment applies it" in event.summary


def test_a_group_name_that_makes_manifest_names_too_long_is_refused(
    alice: User, stage: Environment
) -> None:
    service = factories.make_service("a-rather-long-service-name-for-ingesting-events")
    with pytest.raises(ValidationError, match="exceed 63 characters"):
        create_group(user=alice, service=service, environment=stage, name="europe-west-primary")
