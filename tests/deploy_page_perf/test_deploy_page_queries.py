"""The Deploy page at scale (issue #16): as many SQL queries for 200 services as for 10, and
the boxes it writes itself (not through widget templates) still escape and say everything."""

import html
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from deployments.models import Group, Service
from environments.models import Environment
from permissions.models import Blocker
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


def _add_services(count: int, *, staging: Environment) -> None:
    """Services with a version and a group each; every third is denied to bob."""
    for _ in range(count):
        service = factories.make_service()
        factories.make_version(service)
        Group.objects.create(service=service, environment=staging, name="eu")
        if service.pk % 3 == 0:
            bob = User.objects.get(username="bob")
            grant(actor=None, user=bob, verbs=[Verb.DEPLOY], service=service, effect=Effect.DENY)


def _queries(client: Client, query: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/deploy/", query)
    assert response.status_code == 200
    # Savepoints belong to the test's transaction, not to the request.
    return len([q for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]])


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_the_deploy_page_asks_as_many_queries_for_200_services_as_for_10(
    persona: str,
    alice: User,
    bob: User,
    staging: Environment,
    production: Environment,
    checkout: Service,
) -> None:
    client = login(User.objects.get(username=persona))
    factories.make_version(checkout)
    chosen = {"services": [checkout.pk], "environments": [staging.pk]}
    _add_services(10, staging=staging)
    client.get("/deploy/")  # the session and its user are warm in both counts
    few_empty, few_chosen = _queries(client, {}), _queries(client, chosen)
    _add_services(190, staging=staging)
    many_empty, many_chosen = _queries(client, {}), _queries(client, chosen)
    assert (many_empty, many_chosen) == (few_empty, few_chosen)


def test_the_boxes_the_page_writes_escape_their_text(
    bob: User, staging: Environment, checkout: Service
) -> None:
    Blocker.objects.create(name="<b>freeze</b>", kind="unconditional", environment=staging)
    body = login(bob).get("/deploy/").content.decode()
    assert "<b>freeze</b>" not in body
    assert html.escape("blocked by '<b>freeze</b>' until it is lifted") in body


def test_the_boxes_keep_what_the_query_string_checked_and_what_is_refused(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    other = factories.make_service("billing")
    body = login(bob).get("/deploy/", {"services": [checkout.pk], "environments": [staging.pk]})
    text = body.content.decode()
    assert (
        f'<input type="checkbox" name="services" value="{checkout.pk}" '
        f'id="service-{checkout.pk}" checked>' in text
    )
    assert (
        f'<input type="checkbox" name="services" value="{other.pk}" id="service-{other.pk}">'
        in text
    )
    assert (
        f'<input type="checkbox" name="environments" value="{staging.pk}" '
        f'id="env-{staging.pk}" checked>' in text
    )
    assert f'id="env-{production.pk}" disabled aria-describedby="why-env-{production.pk}">' in text
    assert (
        f'<small class="why" id="why-env-{production.pk}">'
        "bob may not deploy production: no grant matches</small>" in text
    )


def test_the_group_boxes_name_their_service_and_environment_and_keep_the_checked_one(
    bob: User, staging: Environment, checkout: Service
) -> None:
    eu = Group.objects.create(service=checkout, environment=staging, name="eu")
    us = Group.objects.create(service=checkout, environment=staging, name="us")
    text = login(bob).get("/deploy/", {"groups": [us.pk]}).content.decode()
    for group, state in ((eu, ""), (us, " checked")):
        assert f'<input type="checkbox" name="groups" value="{group.pk}" id="id_groups_' in text
        assert (
            f'{state} data-service="{checkout.pk}" data-environment="{staging.pk}"> '
            f'<label for="id_groups_' in text
        )
        assert f"checkout / staging / {group.name}</label>" in text


@pytest.mark.parametrize("query", [{}, "chosen"])
def test_a_developers_deploy_page_reads_every_service_and_environment_once(
    query: Any, bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    """The page lists every service and environment; what bob may view is decided on those
    same rows (permissions.selectors.service_rows, every_environment), not on a second read."""
    _add_services(5, staging=staging)
    client = login(bob)
    if query == "chosen":
        query = {"services": [checkout.pk], "environments": [staging.pk]}
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/deploy/", query)
    assert response.status_code == 200
    every_service = [
        q["sql"]
        for q in captured.captured_queries
        if 'FROM "deployments_service"' in q["sql"] and "WHERE" not in q["sql"]
    ]
    assert len(every_service) == 1, every_service
    assert 'FROM "deployments_service" ORDER BY' in every_service[0]
    environments = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith('SELECT "environments_environment".')
    ]
    assert len(environments) == 1, environments
    # bob views production, where he may not deploy: listed, its box disabled.
    assert f'id="env-{production.pk}" disabled' in response.content.decode()
