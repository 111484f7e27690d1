"""The History page names its rows' services and environments from the names its filter form
read for the options (deployments.selectors.KnownNames), on PostgreSQL, rather than by two
subqueries per row (#16). The rows are the ones the subqueries give; a service or environment
the form did not read (created since) is read by its id; SQLite keeps its joins."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment
from deployments.selectors import KnownNames, table_rows
from environments.models import Environment
from history.selectors import read_catalogue
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployments(alice: User) -> Any:
    """Three deployments of two services in two environments, newest first."""
    staging = factories.make_environment("staging-1", availability="staging")
    production = factories.make_environment("production-1")
    checkout, ledger = factories.make_service("checkout"), factories.make_service("ledger")
    for service, environment in ((checkout, staging), (ledger, production), (ledger, staging)):
        factories.make_deployment(service=service, environment=environment, deployed_by=alice)
    return Deployment.objects.order_by("-created_at", "-id")


def _names() -> KnownNames:
    catalogue = read_catalogue(username=None)
    return KnownNames(catalogue.services, catalogue.environments)


def test_rows_named_from_the_catalogue_are_the_rows_the_subqueries_give(
    deployments: Any,
) -> None:
    named = table_rows(deployments, names=_names())
    assert named == table_rows(deployments)
    assert [(r["service_name"], r["environment_name"]) for r in named] == [
        ("ledger", "staging-1"),
        ("ledger", "production-1"),
        ("checkout", "staging-1"),
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's subqueries")
def test_postgresql_reads_neither_name_per_row(deployments: Any) -> None:
    names = _names()
    with CaptureQueriesContext(connection) as statements:
        table_rows(deployments, names=names)
    (statement,) = [q["sql"] for q in statements.captured_queries]
    assert '"deployments_service"' not in statement
    assert '"environments_environment"' not in statement
    # The other names are still read with the rows.
    assert '"deployments_deployableversion"' in statement
    assert '"auth_user"' in statement


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's subqueries")
def test_a_service_and_an_environment_created_since_are_read_by_id(
    alice: User, deployments: Any
) -> None:
    names = _names()
    late = factories.make_deployment(
        service=factories.make_service("billing"),
        environment=factories.make_environment("qa-1"),
        deployed_by=alice,
    )
    with CaptureQueriesContext(connection) as statements:
        rows = table_rows(deployments, names=names)
    assert rows[0]["pk"] == late.pk
    assert (rows[0]["service_name"], rows[0]["environment_name"]) == ("billing", "qa-1")
    assert rows == table_rows(deployments)
    # The rows, then one read per table for the two names missing.
    assert len(statements.captured_queries) == 3


def test_the_history_page_shows_the_names(client: Any, alice: User, deployments: Any) -> None:
    alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    Environment.objects.filter(name="production-1").update(name="production-renamed")
    page = client.get("/history/").content.decode()
    assert page.count(">ledger</a>") == 2
    assert page.count(">checkout</a>") == 1
    assert "<td>production-renamed</td>" in page


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's subqueries")
def test_the_history_page_reads_its_rows_with_the_forms_names(
    client: Any, alice: User, deployments: Any
) -> None:
    alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    with CaptureQueriesContext(connection) as statements:
        assert client.get("/history/?service=ledger").status_code == 200
    (rows,) = [
        q["sql"]
        for q in statements.captured_queries
        if q["sql"].startswith('SELECT "deployments_deployment"."id" AS "pk"')
    ]
    assert '"deployments_service"' not in rows
    assert '"environments_environment"' not in rows
