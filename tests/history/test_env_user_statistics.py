"""PostgreSQL knows how often each deployer deploys to each environment (statistics made by
deployments migration 0011), so that History filtered by both walks the environment's
newest-first index when the pair is common instead of sorting every match (issue #16). On
SQLite, which has no such statistics, it is skipped. Since migration 0012 the pair has an
index of its own (deployment_env_user_idx, tests/pg_plans/test_history_env_user_plans.py), which
the page reads whatever ANALYZE's sample holds; the statistics still give the planner the
pair's row count."""

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statistics"),
]


def test_the_environment_and_user_pair_has_its_statistics() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stxkind, (SELECT array_agg(attname ORDER BY attname) FROM pg_attribute "
            "WHERE attrelid = stxrelid AND attnum = ANY(stxkeys)) "
            "FROM pg_statistic_ext WHERE stxname = %s AND stxrelid = %s::regclass",
            ["deployment_env_user_stats", "deployments_deployment"],
        )
        kinds, columns = cursor.fetchone()
    assert sorted(kinds) == ["f", "m"]  # functional dependencies, most common values
    assert columns == ["deployed_by_id", "environment_id"]
