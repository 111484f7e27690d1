"""On PostgreSQL the deployment tables (History, home) read their rows' names through one
subquery each, by primary key, not through a six-table join: PostgreSQL plans every statement
Django sends, and that join took 2.5 ms to plan for 0.4 ms of reading at 100,000 deployments
(deployments.selectors.table_rows). The rows read the same either way.

CI runs this on PostgreSQL (DATABASE_URL); on SQLite (joins, planned at no cost) it is skipped."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.conftest import login

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's planning (CI runs it there)"
    ),
]


@pytest.mark.parametrize("path", ["/history/", "/"])
def test_the_rows_of_a_deployment_table_are_read_without_a_join(alice: User, path: str) -> None:
    service = factories.make_service("checkout")
    environment = factories.make_environment("staging")
    factories.make_deployment(
        service=service, environment=environment, deployed_by=alice, message="Fix the basket"
    )
    with CaptureQueriesContext(connection) as queries:
        page = login(alice).get(path).content.decode()
    rows = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('SELECT "deployments_deployment"."id" AS "pk"')
    ]
    assert len(rows) == 1
    assert " JOIN " not in rows[0]
    # The rows and a subquery per name; History names the service and the environment from
    # its filter form's read (deployments.selectors.KnownNames).
    assert rows[0].count("SELECT") == {"/history/": 4, "/": 6}[path]
    for shown in ("checkout", "staging", "alice", "Fix the basket"):
        assert shown in page
