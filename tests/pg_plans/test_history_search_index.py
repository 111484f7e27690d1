"""On PostgreSQL a search reads the deployments of the versions it found as ids alone from
history_deployment_version_ids_idx (history.text_search.PG_COVERING_INDEXES, made after every
migrate), without a visit to each row: the foreign key's index on version_id does not hold the
id. Read with EXPLAIN on a small table with every other way to the rows discouraged, as the
planner would choose on a large vacuumed one.

CI runs this on PostgreSQL (DATABASE_URL); on SQLite (whose index holds the rowid) it is
skipped."""

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
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's plans (CI runs it there)"
    ),
]


def test_the_index_holds_the_version_and_the_id() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
            ["history_deployment_version_ids_idx"],
        )
        (definition,) = cursor.fetchone()
    assert definition.endswith("(version_id) INCLUDE (id)"), definition


def test_a_commit_word_reads_its_deployments_ids_from_the_index(
    alice: User, checkout: Service, production: Environment
) -> None:
    version = factories.make_version(checkout, commit_message="Rework the ledger")
    for _ in range(3):
        factories.make_deployment(
            service=checkout, environment=production, deployed_by=alice, version=version
        )
    with CaptureQueriesContext(connection) as queries:
        page = login(alice).get("/history/?q=ledger").content.decode()
    (sql,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("WITH probe")]
    with connection.cursor() as cursor:
        for way in ("seqscan", "bitmapscan", "indexscan"):
            cursor.execute(f"SET LOCAL enable_{way} = off")
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using history_deployment_version_ids_idx" in plan, plan
    assert page.count("Rework the ledger") == 0  # the rows show the deployment's own message
    assert page.count('<td class="message">') == 3
