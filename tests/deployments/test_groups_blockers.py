"""Blockers scoped to a group name: they refuse that group only, deploying and scaling alike."""

import pytest
from django.contrib.auth.models import User

from deployments.models import Group
from deployments.services.deploy import request_deployment
from deployments.services.groups import ScalingRefused, scale_group, scaling_refusal
from environments.models import Environment
from permissions.models import Blocker
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage() -> Environment:
    return factories.make_environment("stage-1", availability="staging")


@pytest.fixture
def groups(stage: Environment) -> dict[str, Group]:
    ingest = factories.make_service("ingest", deployed_per_group=True)
    return {
        name: Group.objects.create(service=ingest, environment=stage, name=name)
        for name in ("eu", "us", "apac")
    }


def _freeze_eu(**scope: object) -> Blocker:
    return Blocker.objects.create(
        name="EU freeze", kind=Blocker.Kind.UNCONDITIONAL, group_name="eu", **scope
    )


def test_a_group_blocker_refuses_that_group_and_lets_the_others_deploy(
    bob: User, groups: dict[str, Group]
) -> None:
    _freeze_eu(availability="staging")
    version = factories.make_version(groups["eu"].service)
    kinds = {}
    for name, group in groups.items():
        outcome = request_deployment(
            user=bob,
            service=group.service,
            environment=group.environment,
            version=version,
            group=group,
        )
        kinds[name] = (outcome.kind, outcome.reason)
    assert kinds["eu"][0] == "blocked"
    assert "EU freeze" in kinds["eu"][1]
    assert kinds["us"][0] == kinds["apac"][0] == "created"


def test_a_group_blocker_does_not_touch_ungrouped_deployments(
    bob: User, stage: Environment
) -> None:
    _freeze_eu()
    service = factories.make_service("checkout")
    outcome = request_deployment(
        user=bob, service=service, environment=stage, version=factories.make_version(service)
    )
    assert outcome.kind == "created"


def test_a_group_blocker_refuses_scaling_that_group_only(
    bob: User, alice: User, groups: dict[str, Group]
) -> None:
    _freeze_eu()
    for group in groups.values():
        factories.make_deployment(
            service=group.service,
            environment=group.environment,
            deployed_by=alice,
            group=group,
            group_key=group.name,
        )
    with pytest.raises(ScalingRefused, match="blocked by EU freeze"):
        scale_group(user=bob, group=groups["eu"], replicas=3)
    assert scaling_refusal(bob, groups["us"]) == ""
    assert scaling_refusal(bob, groups["apac"]) == ""


def test_the_admin_scopes_a_blocker_to_a_group_and_checks_the_name(alice: User) -> None:
    client = login(alice)
    data = {"name": "EU freeze", "kind": "unconditional", "active": "on", "overridable": "on"}
    response = client.post("/admin/permissions/blocker/add/", {**data, "group_name": "EU!"})
    assert response.status_code == 200
    assert b"DNS-1123 label" in response.content
    assert not Blocker.objects.exists()
    response = client.post("/admin/permissions/blocker/add/", {**data, "group_name": "eu"})
    assert response.status_code == 302, response.content
    blocker = Blocker.objects.get()
    assert blocker.group_name == "eu"
    assert blocker.scope_label == "group eu of every deployment"
    listing = client.get("/admin/permissions/blocker/?group_name=eu")
    assert b"EU freeze" in listing.content
