"""On PostgreSQL the fixed statements of the Deploy page and the status board (what runs, the
marks in force, the recent versions, the board's cells and commits, the reader's grants) are
prepared once per connection and then only bound and run (apollo_site.prepared_sql): a
developer's pages, requested again and again, leave one prepared statement each, used by
every request. The pages read the same with prepared statements off."""

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import BadVersion, Service
from environments.models import Environment
from tests import factories
from tests.conftest import login, prepared_statements_off

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's prepared statements (CI runs it)"
    ),
]

RUNS = 7


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging-1", availability="staging")


@pytest.fixture
def running(bob: User, staging: Environment, checkout: Service) -> str:
    """A DONE deployment of checkout in staging (what runs, on the board and the Deploy page),
    a newer version to choose, and a mark on the running one: every fixed read finds rows."""
    deployment = factories.make_deployment(service=checkout, environment=staging, deployed_by=bob)
    factories.make_version(checkout, commit_message="Newer")
    mark = BadVersion.objects.create(
        service=checkout,
        environment=staging,
        sha=deployment.version.git_commit_sha,
        reason="broke checkout",
        marked_by=bob,
        deployment=deployment,
    )
    return mark.reason


def _prepared() -> dict[str, tuple[int, int]]:
    """Each statement this connection keeps prepared, by the tables it reads: (runs, count)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements"
            " WHERE NOT from_sql"
        )
        rows = cursor.fetchall()
    found: dict[str, tuple[int, int]] = {}
    for statement, runs in rows:
        for name, table in TABLES.items():
            if statement.lstrip("( ").startswith("SELECT") and f'FROM "{table}"' in statement:
                seen_runs, count = found.get(name, (0, 0))
                found[name] = (seen_runs + runs, count + 1)
    return found


# The table each fixed read selects FROM first.
TABLES = {
    "grants": "permissions_grantuserobjectpermission",
    "marks": "deployments_badversion",
    "recent versions": "deployments_deployableversion",
    "what runs": "deployments_deployment",
}


def _deploy_page(client: object, checkout: Service, staging: Environment) -> str:
    query = {"services": [checkout.pk], "environments": [staging.pk]}
    response = client.get("/deploy/", query)  # type: ignore[attr-defined]
    assert response.status_code == 200
    return str(response.content.decode())


def test_the_deploy_pages_fixed_reads_are_prepared_once_and_reused(
    bob: User, staging: Environment, checkout: Service, running: str
) -> None:
    client = login(bob)
    for _ in range(RUNS):
        body = _deploy_page(client, checkout, staging)
        assert running in body  # the mark is read and shown
    prepared = _prepared()
    # One statement each (prepared once), every request's run using it.
    assert prepared == {
        "grants": (RUNS, 1),
        "marks": (RUNS, 1),
        "recent versions": (RUNS, 1),
        "what runs": (RUNS, 1),
    }


def test_the_boards_fixed_reads_are_prepared_once_and_reused(
    bob: User, staging: Environment, checkout: Service, running: str
) -> None:
    client = login(bob)
    for _ in range(RUNS):
        response = client.get("/status/")
        assert response.status_code == 200
        assert "checkout" in response.content.decode()
    prepared = _prepared()
    # The grants, the cells (a window over the deployments) and the running commits.
    assert prepared["grants"] == (RUNS, 1)
    assert prepared["what runs"] == (RUNS, 1)
    assert prepared["recent versions"] == (RUNS, 1)


def test_the_logged_statements_run_again_as_the_benches_explain_them(
    bob: User, staging: Environment, checkout: Service, running: str
) -> None:
    client = login(bob)
    with CaptureQueriesContext(connection) as captured:
        _deploy_page(client, checkout, staging)
        assert client.get("/status/").status_code == 200
    logged = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len([sql for sql in logged if sql.startswith(("SELECT", "(SELECT"))]) >= 10
    with connection.cursor() as cursor:
        for sql in logged:
            cursor.execute("EXPLAIN " + sql)  # with its values in it: no "$1" left to bind
            assert cursor.fetchall()


def test_with_prepared_statements_off_the_pages_read_the_same(
    bob: User, staging: Environment, checkout: Service, running: str
) -> None:
    client = login(bob)
    prepared_page = _deploy_page(client, checkout, staging)
    prepared_board = client.get("/status/").content.decode()
    with prepared_statements_off():
        plain_page = _deploy_page(client, checkout, staging)
        plain_board = client.get("/status/").content.decode()
    assert _without_tokens(plain_page) == _without_tokens(prepared_page)
    assert _without_tokens(plain_board) == _without_tokens(prepared_board)


def _without_tokens(body: str) -> str:
    """The page without its CSRF token and CSP nonces, which differ from request to request."""
    return re.sub(r'(csrfmiddlewaretoken" value|nonce)="[^"]*"', r'\1=""', body)
