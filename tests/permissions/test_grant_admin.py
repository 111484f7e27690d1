"""The grant admin: grant, change and revoke at every scope, search, filters, history."""

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from history.models import AuditEvent
from permissions.models import Grant
from permissions.services import can, grant, grant_verbs
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db
ADD = "/admin/permissions/grant/add/"
LIST = "/admin/permissions/grant/"


def _form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user": "",
        "group": "",
        "verbs": ["deploy"],
        "effect": "ALLOW",
        "service": "",
        "environment": "",
        "availability": "",
        "note": "",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("scope", ["environment", "service", "pair", "availability"])
def test_alice_grants_at_every_scope_and_history_names_her(
    alice: User, mallory: User, scope: str
) -> None:
    svc = factories.make_service("checkout")
    env = factories.make_environment("prod", availability="production")
    scopes: dict[str, dict[str, Any]] = {
        "environment": {"environment": env.pk},
        "service": {"service": svc.pk},
        "pair": {"service": svc.pk, "environment": env.pk},
        "availability": {"availability": "production"},
    }
    fields = scopes[scope]
    response = login(alice).post(
        ADD, _form(user=mallory.pk, verbs=["deploy", "view_logs"], **fields)
    )
    assert response.status_code == 302, response.content
    created = Grant.objects.get()
    assert grant_verbs(created) == ["deploy", "view_logs"]
    assert can(mallory, Verb.DEPLOY, service=svc, environment=env)
    event = AuditEvent.objects.get(action="grant.created")
    assert event.actor == alice


def test_alice_grants_a_deny_to_a_group(alice: User, mallory: User) -> None:
    devs = Group.objects.create(name="developers")
    mallory.groups.add(devs)
    env = factories.make_environment("prod", availability="production")
    grant(actor=alice, user=mallory, verbs=[Verb.DEPLOY], environment=env)
    response = login(alice).post(ADD, _form(group=devs.pk, effect="DENY", environment=env.pk))
    assert response.status_code == 302
    assert not can(mallory, Verb.DEPLOY, service=factories.make_service(), environment=env)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "exactly one"),
        ({"user": "USER", "group": "GROUP"}, "exactly one"),
        ({"user": "USER"}, "Choose a scope"),
        ({"user": "USER", "environment": "ENV", "availability": "production"}, "Choose a scope"),
        ({"user": "USER", "availability": "production", "verbs": []}, "This field is required"),
        ({"user": "USER", "availability": "production", "verbs": ["fly"]}, "Select a valid choice"),
    ],
)
def test_the_form_refuses_what_is_not_a_grant(
    alice: User, mallory: User, overrides: dict[str, Any], message: str
) -> None:
    devs = Group.objects.create(name="developers")
    env = factories.make_environment("prod", availability="production")
    ids = {"USER": mallory.pk, "GROUP": devs.pk, "ENV": env.pk}
    data = _form(**{k: ids.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()})
    response = login(alice).post(ADD, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Grant.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="grant.").exists()


def test_the_change_form_shows_the_holder_and_verbs_and_saving_records_a_change(
    alice: User, mallory: User
) -> None:
    created = grant(actor=alice, user=mallory, verbs=[Verb.EXEC], availability="staging")
    client = login(alice)
    page = client.get(f"{LIST}{created.pk}/change/")
    assert page.context["adminform"].form.initial["verbs"] == ["exec"]
    assert page.context["adminform"].form.initial["user"] == mallory
    response = client.post(
        f"{LIST}{created.pk}/change/",
        _form(user=mallory.pk, verbs=["exec", "restart"], availability="staging", effect="DENY"),
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="grant.changed")
    assert event.actor == alice
    assert event.data["before"]["verbs"] == ["exec"]
    assert event.data["after"]["verbs"] == ["restart", "exec"]
    assert event.data["after"]["effect"] == "DENY"


def test_deleting_a_grant_revokes_it_with_history(alice: User, mallory: User) -> None:
    created = grant(actor=alice, user=mallory, verbs=[Verb.EXEC], availability="staging")
    response = login(alice).post(f"{LIST}{created.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Grant.objects.exists()
    assert AuditEvent.objects.get(action="grant.revoked").actor == alice


def test_the_bulk_delete_action_revokes_each_grant_with_its_own_event(
    alice: User, mallory: User, carol: User
) -> None:
    one = grant(actor=alice, user=mallory, verbs=[Verb.EXEC], availability="staging")
    two = grant(actor=alice, user=carol, verbs=[Verb.EXEC], availability="staging")
    response = login(alice).post(
        LIST, {"action": "delete_selected", "_selected_action": [one.pk, two.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not Grant.objects.filter(pk__in=[one.pk, two.pk]).exists()
    assert AuditEvent.objects.filter(action="grant.revoked").count() == 2


def _listed(client: Any, **params: str) -> set[int]:
    response = client.get(LIST, params)
    assert response.status_code == 200
    return {g.pk for g in response.context["cl"].result_list}


def test_the_list_searches_by_holder_and_scope_and_filters_by_verb_effect_and_holder_kind(
    alice: User, mallory: User
) -> None:
    devs = Group.objects.create(name="developers")
    svc = factories.make_service("checkout")
    by_user = grant(actor=alice, user=mallory, verbs=[Verb.EXEC], service=svc)
    by_group = grant(
        actor=alice, group=devs, verbs=[Verb.DEPLOY], effect=Effect.DENY, availability="prod"
    )
    client = login(alice)
    assert _listed(client, q="mallory") == {by_user.pk}
    assert _listed(client, q="developers") == {by_group.pk}
    assert _listed(client, q="checkout") == {by_user.pk}
    assert _listed(client, verb="deploy") == {by_group.pk}
    assert _listed(client, effect__exact="DENY") == {by_group.pk}
    assert _listed(client, held_by="user") == {by_user.pk}
    assert _listed(client, held_by="group") == {by_group.pk}


def test_the_list_shows_holder_verbs_and_scope_in_constant_queries(
    alice: User, mallory: User
) -> None:
    grant(actor=alice, user=mallory, verbs=[Verb.EXEC], availability="staging")
    first = Group.objects.create(name="first")
    grant(actor=alice, group=first, verbs=[Verb.EXEC], availability="staging")
    client = login(alice)
    with CaptureQueriesContext(connection) as few:
        client.get(LIST)
    for n in range(10):
        devs = Group.objects.create(name=f"devs-{n}")
        env = factories.make_environment(f"env-l{n}")
        grant(actor=alice, group=devs, verbs=[Verb.DEPLOY, Verb.CANCEL], environment=env)
    with CaptureQueriesContext(connection) as many:
        response = client.get(LIST)
    assert len(many) == len(few)
    page = response.content.decode()
    assert "group devs-3" in page
    assert "deploy, cancel" in page


def test_non_staff_personas_cannot_reach_the_grant_admin(bob: User, carol: User) -> None:
    for user in (bob, carol):
        assert login(user).get(LIST).status_code == 302
        assert login(user).post(ADD, _form(user=user.pk, availability="x")).status_code == 302
    assert Grant.objects.count() == 4  # the persona grants only: bob's two, carol's two


def test_alice_can_still_delete_a_service_that_carries_grants(alice: User, mallory: User) -> None:
    svc = factories.make_service("checkout")
    grant(actor=alice, user=mallory, verbs=[Verb.DEPLOY], service=svc)
    response = login(alice).post(f"/admin/deployments/service/{svc.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Grant.objects.exists()


def test_the_guardian_rows_cannot_be_deleted_on_their_own(alice: User, mallory: User) -> None:
    created = grant(actor=alice, user=mallory, verbs=[Verb.DEPLOY], availability="staging")
    row = created.user_perms.get()
    client = login(alice)
    url = f"/admin/permissions/grantuserobjectpermission/{row.pk}/delete/"
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert (
        client.get(f"/admin/permissions/grantuserobjectpermission/{row.pk}/change/").status_code
        == 200
    )
    assert created.user_perms.exists()
