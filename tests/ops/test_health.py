"""/healthz and /readyz: unauthenticated, cheap, JSON, answered whatever the Host header."""

import logging
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apollo_site.ops import views
from tests.factories import make_cluster


def test_healthz_answers_ok_without_a_session_or_a_known_host(db: None) -> None:
    response = Client().get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_touches_no_database(db: None) -> None:
    with CaptureQueriesContext(connection) as queries:
        Client().get("/healthz")
    assert len(queries) == 0


def test_readyz_reports_the_database_migrations_and_clusters(db: None, settings: Any) -> None:
    settings.APOLLO_REDIS_URL = None  # the PostgreSQL/Redis pass: Redis is checked below
    make_cluster("prod-eu")
    response = Client().get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "migrations": "ok"}
    assert body["clusters"] == ["prod-eu"]


def test_readyz_costs_at_most_two_queries(db: None) -> None:
    Client().get("/readyz")  # the first answer also checks the migrations
    with CaptureQueriesContext(connection) as queries:
        assert Client().get("/readyz").status_code == 200
    assert len(queries) <= 2


def test_readyz_is_unavailable_when_redis_does_not_answer(db: None, settings: Any) -> None:
    settings.APOLLO_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"].startswith("unavailable")
    assert body["checks"]["database"] == "ok"


def test_probes_are_exempt_from_the_https_redirect(db: None, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    assert Client().get("/healthz").status_code == 200
    assert Client().get("/readyz").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_are_not_logged_at_info(
    db: None, path: str, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.APOLLO_REDIS_URL = "redis://127.0.0.1:1/0"  # a 503 for /readyz
    with caplog.at_level(logging.INFO):
        Client().get(path)
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_readyz_is_unavailable_while_a_migration_is_not_applied(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "_migrations_applied", False)  # a fresh process
    [leaf] = MigrationLoader(connection).graph.leaf_nodes("deployments")
    MigrationRecorder(connection).record_unapplied(*leaf)  # as if the release added it
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert "not applied" in response.json()["checks"]["migrations"]
