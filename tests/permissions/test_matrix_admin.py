"""The admin page "who can do what": users and groups x services x environments for a verb."""

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from permissions.selectors import Matrix
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db
MATRIX = "/admin/permissions/grant/matrix/"


def _cells(matrix: Matrix, label: str) -> dict[tuple[str, str], str]:
    row = next(r for r in matrix.rows if r.label == label)
    return {
        (s.name, e.name): cell.label if cell.allowed else f"no {cell.label}".strip()
        for (s, e), cell in zip(matrix.columns, row.cells, strict=True)
    }


def test_it_shows_who_may_deploy_where_and_why(alice: User, bob: User, mallory: User) -> None:
    checkout = factories.make_service("checkout")
    factories.make_environment("staging-1", availability="staging")
    prod = factories.make_environment("prod", availability="production")
    devs = Group.objects.create(name="developers")
    mallory.groups.add(devs)
    grant(actor=alice, group=devs, verbs=[Verb.DEPLOY], service=checkout)
    grant(actor=alice, group=devs, verbs=[Verb.DEPLOY], effect=Effect.DENY, environment=prod)
    response = login(alice).get(MATRIX, {"verb": "deploy"})
    assert response.status_code == 200
    matrix = response.context["matrix"]
    assert _cells(matrix, "user alice") == {
        ("checkout", "prod"): "superuser",
        ("checkout", "staging-1"): "superuser",
    }
    assert _cells(matrix, "user bob") == {
        ("checkout", "prod"): "no",
        ("checkout", "staging-1"): "ALLOW",
    }
    assert _cells(matrix, "user mallory") == {
        ("checkout", "prod"): "no DENY",
        ("checkout", "staging-1"): "ALLOW",
    }
    assert _cells(matrix, "group developers") == _cells(matrix, "user mallory")
    page = response.content.decode()
    assert (
        "mallory may not deploy checkout in prod: DENY on environment prod to group developers"
        in page
    )


def test_it_answers_for_the_chosen_verb_and_narrows_to_a_service_and_environment(
    alice: User, bob: User
) -> None:
    checkout = factories.make_service("checkout")
    factories.make_service("billing")
    staging = factories.make_environment("staging-1", availability="staging")
    factories.make_environment("staging-2", availability="staging")
    response = login(alice).get(
        MATRIX, {"verb": "exec", "service": str(checkout.pk), "environment": str(staging.pk)}
    )
    matrix = response.context["matrix"]
    assert matrix.verb == Verb.EXEC
    assert [(s.name, e.name) for s, e in matrix.columns] == [("checkout", "staging-1")]
    assert _cells(matrix, "user bob") == {("checkout", "staging-1"): "no"}


def test_an_unknown_verb_falls_back_to_deploy(alice: User) -> None:
    response = login(alice).get(MATRIX, {"verb": "<script>"})
    assert response.context["matrix"].verb == Verb.DEPLOY


def test_its_query_count_does_not_grow_with_users_groups_and_grants(alice: User) -> None:
    def populate(n: int) -> None:
        user = factories.make_user(f"user-m{n}")
        group = Group.objects.create(name=f"group-m{n}")
        user.groups.add(group)
        env = factories.make_environment(f"env-m{n}")
        factories.make_service(f"svc-m{n}")
        grant(actor=alice, group=group, verbs=[Verb.DEPLOY], environment=env)
        grant(actor=alice, user=user, verbs=[Verb.DEPLOY], availability="staging")

    populate(0)
    client = login(alice)
    with CaptureQueriesContext(connection) as few:
        client.get(MATRIX)
    for n in range(1, 8):
        populate(n)
    with CaptureQueriesContext(connection) as many:
        client.get(MATRIX)
    assert len(many) == len(few)


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
def test_non_staff_personas_are_sent_to_the_admin_login(
    personas: dict[str, User], persona: str
) -> None:
    response = login(personas[persona]).get(MATRIX)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_grant_list_links_to_it(alice: User) -> None:
    assert MATRIX in login(alice).get("/admin/permissions/grant/").content.decode()


@pytest.mark.parametrize("value", ["²", "9" * 30])
def test_it_ignores_a_filter_id_that_is_not_a_plain_number(alice: User, value: str) -> None:
    factories.make_service("checkout")
    for field in ("service", "environment"):
        assert login(alice).get(MATRIX, {field: value}).status_code == 200
