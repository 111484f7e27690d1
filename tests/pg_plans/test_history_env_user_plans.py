"""On PostgreSQL History filtered by an environment and a deployer reads the pair's newest rows
from deployment_env_user_idx (deployments migration 0012), whatever the planner estimates of
how many rows the pair has: without it, the plan depended on whether ANALYZE's sample knew the
pair (a walk of the environment's index, or both single-column indexes combined and every match
sorted). Read with EXPLAIN ANALYZE on a small table with sequential scans discouraged, as the
planner would choose on a large one.

CI runs this on PostgreSQL (DATABASE_URL); on SQLite it is skipped (tests/history has its
plan)."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment, Service
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's plans (CI runs it there)"
    ),
]


def test_an_environment_and_a_deployer_are_read_from_their_pair_index(
    alice: User, checkout: Service, production: Environment
) -> None:
    staging = factories.make_environment("staging")
    bob = factories.make_user("bob")
    version = factories.make_version(checkout)
    Deployment.objects.bulk_create(
        Deployment(
            service=checkout,
            version=version,
            # A third in staging, a third by bob: the pair is one row in 150 of each.
            environment=staging if i % 3 == 0 else production,
            deployed_by=bob if i % 3 == 1 or i % 50 == 0 else alice,
            status="DONE",
            message=f"deployment {i}",
        )
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE deployments_deployment")
    with CaptureQueriesContext(connection) as queries:
        page = login(alice).get("/history/?environment=staging&user=bob").content.decode()
    (sql,) = [q["sql"] for q in queries.captured_queries if 'AS "deployed_by_name"' in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF) " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "deployment_env_user_idx" in plan, plan
    assert "deployment_env_idx" not in plan, plan
    # The pair's rows: 2850 is bob's in staging, 2900 his in production.
    assert '<td class="message">deployment 2850</td>' in page
    assert '<td class="message">deployment 2900</td>' not in page
