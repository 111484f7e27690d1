"""The version picker's CI statuses are read by a statement compiled once per number of versions
(deployments.selectors._ci_sql), kept prepared on PostgreSQL: each version shows its own
statuses, in context order, whatever the number of versions read."""

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.models import CIStatus, DeployableVersion, Service
from deployments.selectors import _ci_statuses, version_picker
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging-1", availability="staging")


def _report(version: DeployableVersion, **states: str) -> None:
    for context, state in states.items():
        CIStatus.objects.create(version=version, context=context, state=state)


def test_each_version_shows_its_own_statuses_in_context_order(
    checkout: Service, staging: Environment
) -> None:
    first = factories.make_version(checkout)
    second = factories.make_version(checkout)
    factories.make_version(checkout)  # no status
    _report(first, unit="success", lint="failure")
    _report(second, unit="pending")
    rows = {r.version.pk: r.ci for r in version_picker([checkout], [staging])[0][1]}
    assert rows == {
        first.pk: [("lint", "failure"), ("unit", "success")],
        second.pk: [("unit", "pending")],
        max(rows): [],
    }


def test_two_numbers_of_versions_read_each_their_own_rows(checkout: Service) -> None:
    versions = [factories.make_version(checkout) for _ in range(3)]
    for n, version in enumerate(versions):
        _report(version, ci=["success", "failure", "error"][n])
    ids = [v.pk for v in versions]
    assert sorted(_ci_statuses(ids[:1])) == [(ids[0], "ci", "success")]
    assert sorted(_ci_statuses(ids)) == [
        (ids[0], "ci", "success"),
        (ids[1], "ci", "failure"),
        (ids[2], "ci", "error"),
    ]
    assert _ci_statuses([]) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's prepared statements")
def test_the_deploy_pages_ci_statuses_are_prepared_once_and_reused(
    bob: User, checkout: Service, staging: Environment
) -> None:
    _report(factories.make_version(checkout), unit="success")
    client = login(bob)
    for _ in range(7):
        response = client.get("/deploy/", {"services": checkout.pk, "environments": staging.pk})
        assert "unit: success" in response.content.decode()
    assert prepared_runs("deployments_cistatus") == [7]


def prepared_runs(table: str) -> list[int]:
    """The runs of each statement this connection keeps prepared that selects FROM the table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements"
            " WHERE NOT from_sql"
        )
        return [n for sql, n in cursor.fetchall() if f'FROM "{table}"' in sql]
