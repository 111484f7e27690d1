"""Deleting a service, environment, user or group revokes its grants, blockers and tokens first,
each recorded in history (the admin deletes through permissions.removal and its siblings)."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied

from deployments.services.catalog import delete_service
from history.models import AuditEvent
from permissions.models import ApiToken, Blocker, Grant
from permissions.removal import delete_holder
from permissions.services import can, grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _delete_in_admin(actor: User, url: str) -> None:
    response = login(actor).post(url, {"post": "yes"})
    assert response.status_code == 302, response.content


def test_deleting_a_service_in_the_admin_records_its_grants_and_blockers(
    alice: User, mallory: User
) -> None:
    svc = factories.make_service("checkout")
    env = factories.make_environment("prod")
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], service=svc, environment=env)
    Blocker.objects.create(name="Checkout freeze", kind=Blocker.Kind.UNCONDITIONAL, service=svc)

    _delete_in_admin(alice, f"/admin/deployments/service/{svc.pk}/delete/")

    assert not Grant.objects.exists()
    assert not Blocker.objects.exists()
    revoked = AuditEvent.objects.get(action="grant.revoked")
    assert revoked.actor == alice
    assert "service 'checkout' was deleted" in revoked.summary
    assert "user mallory" in revoked.summary
    assert "deploy" in revoked.summary
    assert revoked.data["before"]["verbs"] == ["deploy"]
    deleted = AuditEvent.objects.get(action="blocker.deleted")
    assert deleted.actor == alice
    assert "Checkout freeze" in deleted.summary
    assert "service 'checkout' was deleted" in deleted.summary


def test_deleting_an_environment_records_its_grants(alice: User, mallory: User) -> None:
    env = factories.make_environment("prod")
    grant(actor=None, user=mallory, verbs=[Verb.VIEW_LOGS], environment=env)

    _delete_in_admin(alice, f"/admin/environments/environment/{env.pk}/delete/")

    revoked = AuditEvent.objects.get(action="grant.revoked")
    assert revoked.actor == alice
    assert "environment 'prod' was deleted" in revoked.summary


def test_deleting_a_user_removes_and_records_the_grants_they_held(
    alice: User, mallory: User, bob: User
) -> None:
    env = factories.make_environment("staging-eu", availability="staging")
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], environment=env)
    token = factories.token_for(mallory)
    assert can(bob, Verb.DEPLOY, environment=env)  # bob's grant is untouched by what follows

    _delete_in_admin(alice, f"/admin/auth/user/{mallory.pk}/delete/")

    # The grant held by nobody is gone, not left behind as an orphan row (bob's two remain).
    assert Grant.objects.count() == 2
    assert can(bob, Verb.DEPLOY, environment=env)
    revoked = AuditEvent.objects.get(action="grant.revoked")
    assert revoked.actor == alice
    assert "user 'mallory' was deleted" in revoked.summary
    assert "deploy" in revoked.summary
    token_event = AuditEvent.objects.get(action="token.revoked")
    assert token_event.actor == alice
    assert "mallory" in token_event.summary
    assert not ApiToken.objects.exists()
    # The whole secret (it may itself contain "_"), not its tail after the last "_".
    assert token.split("_", 2)[2] not in token_event.summary


def test_deleting_a_group_removes_and_records_its_grants(alice: User) -> None:
    team = Group.objects.create(name="oncall")
    grant(actor=None, group=team, verbs=[Verb.RESTART], availability="production")

    _delete_in_admin(alice, f"/admin/auth/group/{team.pk}/delete/")

    assert not Grant.objects.exists()
    revoked = AuditEvent.objects.get(action="grant.revoked")
    assert "group 'oncall' was deleted" in revoked.summary
    assert "group oncall" in revoked.summary


def test_a_staff_member_cannot_delete_a_group_they_belong_to_with_its_grants(
    alice: User,
) -> None:
    dana = factories.make_user("dana", is_staff=True)
    team = Group.objects.create(name="platform")
    dana.groups.add(team)
    grant(actor=None, group=team, verbs=[Verb.DEPLOY], availability="staging")
    with pytest.raises(PermissionDenied):
        delete_holder(actor=dana, holder=team)
    assert Group.objects.filter(name="platform").exists()
    assert Grant.objects.count() == 1
    assert not AuditEvent.objects.filter(action__in=["grant.revoked", "group.deleted"]).exists()


def test_a_service_deleted_from_a_script_names_nobody(mallory: User) -> None:
    svc = factories.make_service("catalog")
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], service=svc)
    delete_service(actor=None, service=svc)
    revoked = AuditEvent.objects.get(action="grant.revoked")
    assert revoked.actor is None
    assert revoked.actor_name == "system"
    assert AuditEvent.objects.filter(action="service.deleted").count() == 1


def test_a_service_with_deployments_is_not_deleted_and_keeps_its_grants(
    alice: User, mallory: User
) -> None:
    deployment = factories.make_deployment(
        service=factories.make_service("checkout"),
        environment=factories.make_environment("prod"),
        deployed_by=alice,
    )
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], service=deployment.service)
    response = login(alice).post(
        f"/admin/deployments/service/{deployment.service.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 200  # the admin lists what protects it
    assert Grant.objects.count() == 1
    assert not AuditEvent.objects.filter(action="grant.revoked").exists()
