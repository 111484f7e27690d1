"""On PostgreSQL a search reads the deployments of the versions it found as ids and creation
times alone from history_deployment_version_recent_idx (history.text_search.PG_COVERING_INDEXES,
made after every migrate), without a visit to each row: the foreign key's index on version_id
does not hold them. The index it replaced (the ids alone) is dropped. The index is checked by
its definition: which plan reads it on a table of a few rows depends on statistics an earlier
test's ANALYZE leaves behind (they outlive its rollback), so its gain is shown by the history
bench's plans, not here.

CI runs this on PostgreSQL (DATABASE_URL); on SQLite (whose index holds the rowid) it is
skipped."""

import pytest
from django.db import connection

from history.text_search import ensure_schema

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's index (CI runs it there)"
    ),
]


def test_the_index_holds_the_version_the_id_and_the_creation_time() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
            ["history_deployment_version_recent_idx"],
        )
        (definition,) = cursor.fetchone()
    assert definition.endswith("(version_id) INCLUDE (id, created_at)"), definition


def test_the_index_it_replaced_is_dropped_after_migrate() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX history_deployment_version_ids_idx ON deployments_deployment "
            "(version_id) INCLUDE (id)"
        )
        ensure_schema(connection)
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'deployments_deployment' "
            "AND indexname LIKE 'history_deployment_version%%'"
        )
        assert cursor.fetchall() == [("history_deployment_version_recent_idx",)]
