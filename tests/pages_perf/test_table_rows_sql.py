"""On PostgreSQL a deployment table's names are read by subqueries (deployments.selectors.
_TABLE_RELATED_PG) whose SQL is compiled once per process (_table_related_pg_sql): the
statement of every kind of page (first page, filters, a reader's visibility, a cursor, a
search's ids, the id subquery) is the very text Django compiles from the Subqueries."""

from typing import Any

import pytest
from django.db import connection
from django.db.models import Q

from deployments.models import Deployment
from deployments.selectors import (
    _TABLE_COLUMNS,
    _TABLE_RELATED_PG,
    _table_related_pg_sql,
    table_rows,
)
from history.text_search import AmongIds
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's statement (CI runs it)"
    ),
]


def _pages() -> dict[str, Any]:
    newest = Deployment.objects.order_by("-created_at", "-id")
    ids = newest.filter(status="DONE").values("pk")[:51]
    return {
        "first page": newest[:51],
        "filtered": newest.filter(environment_id=3, deployed_by_id=2, status="FAILED")[:51],
        "visibility": newest.filter(
            Q(environment_id__in=[1, 2]) | Q(environment_id=3, service_id__in=[4])
        )[:51],
        "cursor": newest.filter(created_at__lte="2026-01-01T00:00:00Z").exclude(
            created_at="2026-01-01T00:00:00Z", id__gte=9
        )[:51],
        "search ids": newest.filter(AmongIds([3, 1, 2]))[:51],
        "id subquery": Deployment.objects.filter(pk__in=ids).order_by("-created_at", "-id")[:51],
    }


@pytest.mark.parametrize("page", list(_pages()))
def test_the_statement_is_the_one_django_compiles(page: str) -> None:
    rows = _pages()[page]
    djangos = rows.values(*_TABLE_COLUMNS, **_TABLE_RELATED_PG).query.sql_with_params()
    once = rows.values(*_TABLE_COLUMNS, **_table_related_pg_sql("default")).query
    assert once.sql_with_params() == djangos


def test_the_rows_carry_the_related_names(alice: Any) -> None:
    environment = factories.make_environment("staging-1")
    service = factories.make_service("checkout")
    deployment = factories.make_deployment(
        service=service, environment=environment, deployed_by=alice
    )
    (row,) = table_rows(Deployment.objects.filter(pk=deployment.pk))
    assert row["service_name"] == "checkout"
    assert row["environment_name"] == "staging-1"
    assert row["deployed_by_name"] == alice.username
    assert row["sha"] == deployment.version.git_commit_sha
    assert row["group_name"] is None
