"""Nobody but a superuser administers their own rights, in the admin or through the service."""

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import PermissionDenied

from history.models import AuditEvent
from permissions.models import Grant
from permissions.services import grant, revoke_grant, save_grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db
ADD = "/admin/permissions/grant/add/"
LIST = "/admin/permissions/grant/"


@pytest.fixture
def dana(db: None) -> User:
    """Staff, allowed to edit grants in the admin, not a superuser."""
    user = factories.make_user("dana", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="permissions",
            codename__in=["add_grant", "change_grant", "delete_grant", "view_grant"],
        )
    )
    return user


@pytest.fixture(autouse=True)
def production(db: None) -> None:
    factories.make_environment("prod", availability="production")


def _form(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"user": "", "group": "", "verbs": ["deploy"], "effect": "ALLOW"}
    data.update({"service": "", "environment": "", "availability": "production", "note": ""})
    data.update(fields)
    return data


def test_staff_cannot_grant_themselves_a_verb(dana: User) -> None:
    response = login(dana).post(ADD, _form(user=dana.pk))
    assert response.status_code == 200
    assert b"You cannot change your own grants" in response.content
    assert not Grant.objects.exists()
    assert not AuditEvent.objects.exists()


def test_staff_cannot_grant_a_group_they_belong_to(dana: User) -> None:
    team = Group.objects.create(name="platform")
    dana.groups.add(team)
    response = login(dana).post(ADD, _form(group=team.pk))
    assert b"which you belong to" in response.content
    assert not Grant.objects.exists()


def test_staff_may_grant_others(dana: User, mallory: User) -> None:
    response = login(dana).post(ADD, _form(user=mallory.pk))
    assert response.status_code == 302
    assert Grant.objects.count() == 1
    assert AuditEvent.objects.get(action="grant.created").actor == dana


def test_staff_cannot_lift_a_deny_that_binds_them(dana: User) -> None:
    deny = grant(actor=None, user=dana, verbs=[Verb.DEPLOY], availability="production")
    client = login(dana)
    assert client.post(f"{LIST}{deny.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{LIST}{deny.pk}/change/", _form(user=dana.pk)).status_code == 403
    # Nor by moving the grant to somebody else.
    other = factories.make_user("erin")
    assert client.post(f"{LIST}{deny.pk}/change/", _form(user=other.pk)).status_code == 403
    assert client.get(f"{LIST}{deny.pk}/change/").status_code == 200  # still visible
    assert Grant.objects.get().pk == deny.pk
    assert not AuditEvent.objects.filter(action__in=["grant.changed", "grant.revoked"]).exists()


def test_a_bulk_delete_with_their_own_grant_deletes_nothing(dana: User, mallory: User) -> None:
    own = grant(actor=None, user=dana, verbs=[Verb.DEPLOY], availability="production")
    theirs = grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], availability="production")
    response = login(dana).post(
        LIST,
        {"action": "delete_selected", "_selected_action": [own.pk, theirs.pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert Grant.objects.count() == 2


def test_the_service_refuses_the_same(dana: User) -> None:
    with pytest.raises(PermissionDenied):
        grant(actor=dana, user=dana, verbs=[Verb.DEPLOY], availability="staging")
    held = grant(actor=None, user=dana, verbs=[Verb.DEPLOY], availability="staging")
    with pytest.raises(PermissionDenied):
        revoke_grant(actor=dana, grant=held)
    with pytest.raises(PermissionDenied):
        save_grant(actor=dana, grant=held, holder=factories.make_user("erin"), verbs=["deploy"])
    assert Grant.objects.count() == 1


def test_a_superuser_may_administer_their_own_grants(alice: User) -> None:
    response = login(alice).post(ADD, _form(user=alice.pk))
    assert response.status_code == 302
    assert Grant.objects.count() == 1
