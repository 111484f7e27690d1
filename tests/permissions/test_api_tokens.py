"""API tokens are issued once, stored hashed, and authenticate the API."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from history.models import AuditEvent
from permissions.models import ApiToken
from permissions.tokens import issue_token, revoke_token, user_for_key
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db
URL = "/api/v1/deployments/"


def _get(key: str) -> int:
    return Client().get(URL, headers={"Authorization": f"Token {key}"}).status_code


def test_the_key_is_not_stored_anywhere_in_the_database(jenkins: User) -> None:
    key = factories.token_for(jenkins)
    with connection.cursor() as cursor:
        cursor.execute("SELECT prefix, digest, name FROM permissions_apitoken")
        rows = cursor.fetchall()
    assert rows
    secret = key.split("_", 2)[2]  # the secret itself may contain "_"
    assert all(secret not in str(value) for row in rows for value in row)


def test_a_key_authenticates_its_user_and_nothing_else(jenkins: User, bob: User) -> None:
    key = factories.token_for(jenkins)
    assert user_for_key(key) == jenkins
    assert _get(key) == 200
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert user_for_key(tampered) is None
    assert _get(tampered) == 401
    assert _get("apollo_nothing_here") == 401
    assert _get("0" * 40) == 401


def test_a_revoked_token_no_longer_authenticates(jenkins: User, alice: User) -> None:
    token, key = issue_token(actor=alice, user=jenkins, name="Jenkins")
    revoke_token(actor=alice, token=token)
    assert _get(key) == 401
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "token.issued" in actions
    assert "token.revoked" in actions


def test_an_inactive_user_token_is_refused(jenkins: User) -> None:
    key = factories.token_for(jenkins)
    jenkins.is_active = False
    jenkins.save()
    assert _get(key) == 401


def test_the_admin_shows_the_key_once_and_never_again(alice: User, jenkins: User) -> None:
    client = login(alice)
    response = client.post(
        "/admin/permissions/apitoken/add/",
        {"user": jenkins.pk, "name": "Jenkins backup"},
        follow=True,
    )
    assert response.status_code == 200
    key = response.context["api_key"]
    assert user_for_key(key) == jenkins
    token = ApiToken.objects.get(user=jenkins, name="Jenkins backup")
    for url in ["/admin/permissions/apitoken/", f"/admin/permissions/apitoken/{token.pk}/change/"]:
        page = client.get(url).content.decode()
        assert key not in page
        assert token.digest not in page


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
def test_non_staff_personas_cannot_reach_the_token_admin(
    personas: dict[str, User], persona: str
) -> None:
    response = login(personas[persona]).get("/admin/permissions/apitoken/")
    assert response.status_code == 302


def test_it_refuses_a_token_for_another_user_from_a_staff_member_who_is_not_superuser(
    alice: User, bob: User
) -> None:
    from django.contrib.auth.models import Permission

    clerk = factories.make_user("clerk", is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="permissions", codename__in=["add_apitoken", "view_apitoken"]
        )
    )
    client = login(clerk)
    for victim in (alice, bob):
        response = client.post(
            "/admin/permissions/apitoken/add/", {"user": victim.pk, "name": "mine now"}
        )
        assert response.status_code == 200  # the form again, with an error
        assert not ApiToken.objects.filter(user=victim).exists()
    client.post("/admin/permissions/apitoken/add/", {"user": clerk.pk, "name": "own"})
    assert ApiToken.objects.filter(user=clerk, name="own").exists()
