"""History filtered by an environment and a deployer reads the pair's newest rows from
deployment_env_user_idx (deployments migration 0012) on SQLite too: the environment's own index
would read every row of the environment to keep the deployer's (tests/pg_plans has
PostgreSQL's plan)."""

import importlib
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Service
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plan"),
]


def test_an_environment_and_a_deployer_are_read_from_their_pair_index(
    alice: User, checkout: Service, production: Environment
) -> None:
    factories.make_deployment(service=checkout, environment=production, deployed_by=alice)
    with CaptureQueriesContext(connection) as queries:
        response = login(alice).get("/history/?environment=production&user=alice")
    assert response.status_code == 200
    (sql,) = [q["sql"] for q in queries.captured_queries if 'AS "deployed_by_name"' in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
    assert "USING INDEX deployment_env_user_idx (environment_id=? AND deployed_by_id=?)" in plan


def test_a_database_with_statistics_gets_the_new_index_s_too(
    alice: User, checkout: Service, production: Environment
) -> None:
    # Without them, next to the other indexes' statistics, SQLite read the unfiltered page
    # through this index, every environment's rows joined then sorted (migration 0012).
    migration = importlib.import_module("deployments.migrations.0012_deployment_env_user_idx")
    factories.make_deployment(service=checkout, environment=production, deployed_by=alice)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("DELETE FROM sqlite_stat1 WHERE idx = %s", [migration.INDEX])
        migration.analyze(None, SimpleNamespace(connection=connection))
        cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE idx = %s", [migration.INDEX])
        assert cursor.fetchone()[0] == 1
