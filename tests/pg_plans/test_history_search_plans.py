"""On PostgreSQL the History page's word search reads the GIN indexes of history.text_search and
never the whole deployments table: the plans of the queries the page sends, read with EXPLAIN
ANALYZE on a small table with sequential scans discouraged, as the planner would choose them on
a large one. The probe and the ids are one statement (history.text_search.pg_matching_ids),
whose index reads run only when the probe finds the word rare ("never executed" otherwise). A
rare word is read through the indexes, then its rows by primary key; a word in most messages
walks the newest-first index, testing each row's message itself (not a hashed list of every
match built first); a word in most of the newest messages (the probe of
deployments.selectors.PROBE rows) does so without reading the GIN index at all.

CI runs this on PostgreSQL (DATABASE_URL); on SQLite (FTS5, its own plans) it is skipped."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import DeployableVersion, Service
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's plans (CI runs it there)"
    ),
]

DEPLOYMENTS = '"deployments_deployment"'


def _plans(path: str, user: User) -> list[tuple[str, str]]:
    """(sql, plan) of every read of deployments the page sends, each plan's nodes with what
    they did ("never executed": a branch its one-time filter skipped)."""
    with CaptureQueriesContext(connection) as queries:
        assert login(user).get(path).status_code == 200
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in (q["sql"] for q in queries.captured_queries):
            if sql.lstrip("(").startswith(("SELECT", "WITH")) and DEPLOYMENTS in sql:
                cursor.execute("EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF) " + sql)
                plans.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return plans


def _executed(plan: str) -> str:
    return "\n".join(line for line in plan.splitlines() if "never executed" not in line)


def _searched(
    alice: User, service: Service, environment: Environment, words: dict[str, str]
) -> None:
    for i in range(30):
        version = factories.make_version(service, commit_message=f"Change {i}")
        factories.make_deployment(
            service=service,
            environment=environment,
            deployed_by=alice,
            version=version,
            message=f"deployment {i}",
        )
    version = factories.make_version(service, commit_message=words["commit"])
    factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=alice,
        version=version,
        message=words["message"],
    )
    # Versions never deployed, so that a full scan of that table costs more than its index.
    DeployableVersion.objects.bulk_create(
        DeployableVersion(service=service, git_commit_sha=f"{i:040x}", commit_message=f"Tidy {i}")
        for i in range(500)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE deployments_deployment, deployments_deployableversion")


def test_a_rare_word_is_read_through_both_gin_indexes_then_by_primary_key(
    alice: User, checkout: Service, production: Environment
) -> None:
    _searched(alice, checkout, production, {"message": "Hotfix basket", "commit": "Rework ledger"})
    plans = _plans("/history/?q=hotf", alice)
    assert len(plans) == 2  # the probe of the newest rows and the matches' ids, then the page
    (found_sql, found), (_, page) = plans
    found = _executed(found)
    assert "deployment_recent_idx" in found, found
    assert "history_deployment_text_idx" in found, found
    assert "history_version_text_idx" in found, found
    # The message is tested on the row itself, not through a second read of the table.
    assert "IN (SELECT id FROM deployments_deployment" not in found_sql
    assert "Seq Scan on deployments_deployment" not in found + page, page
    assert "deployments_deployment_pkey" in page or "deployment_recent_idx" in page, page


def test_a_word_in_most_messages_walks_the_newest_first_index_testing_each_row(
    alice: User, checkout: Service, production: Environment, monkeypatch: Any
) -> None:
    # DENSE chooses the plan (deployments.selectors): 2 makes "deployment" a common word here.
    monkeypatch.setattr("deployments.selectors.DENSE", 2)
    _searched(alice, checkout, production, {"message": "Hotfix", "commit": "Rework"})
    # PROBE (the newest rows tested first) made larger than this table: it does not decide.
    monkeypatch.setattr("deployments.selectors.PROBE", 10**6)
    (_, found), (page_sql, page) = _plans("/history/?q=deployment", alice)
    assert "history_deployment_text_idx" in _executed(found), found
    assert "deployment_recent_idx" in page, page
    assert "to_tsvector('simple'" in page_sql  # the row's own message, tested as it is read
    assert "Seq Scan on deployments_deployment" not in page, page
    assert "Bitmap Heap Scan on deployments_deployment" not in page, page
    assert "history_deployment_text_idx" not in page, page


def test_a_word_in_most_of_the_newest_messages_walks_at_once_without_reading_the_index(
    alice: User, checkout: Service, production: Environment, monkeypatch: Any
) -> None:
    # The newest 8 deployments all say "deployment": a common word, found by the probe alone
    # (reading the GIN index's matches would build its bitmap of every match first).
    monkeypatch.setattr("deployments.selectors.PROBE", 8)
    _searched(alice, checkout, production, {"message": "Hotfix", "commit": "Rework"})
    (probe_sql, probe), (page_sql, page) = _plans("/history/?q=deployment", alice)
    assert "deployment_recent_idx" in probe, probe
    assert "LIMIT 8" in probe_sql
    assert "deployment_recent_idx" in page, page
    assert "to_tsvector('simple'" in page_sql
    assert "history_deployment_text_idx" not in _executed(probe) + page, probe + page
    assert "Seq Scan on deployments_deployment" not in probe + page, probe + page
