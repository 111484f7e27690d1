"""Point 7 of issue #17: with no deployment worker running, the pages and /readyz say so.

Workers write a heartbeat every second. Without a live one, the Deploy page and the page of a
deployment in progress show a short banner ("no deployment worker has been seen for N s" and
how to start one), /readyz reports it (without failing readiness), and a PENDING deployment
older than APOLLO_PENDING_WARN_SECONDS says why it waits. Before: nothing said anything, the
deployment sat PENDING with an empty reason.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from deployments.models import Deployment, WorkerHeartbeat
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

START = "start one with `python manage.py rundeployments`"


@pytest.fixture
def staging_env() -> Environment:
    return factories.make_environment("staging", availability="staging")


def _beat(*, seconds_ago: float, stopped: bool = False) -> None:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    WorkerHeartbeat.objects.create(
        name=f"host:1:{seconds_ago}",
        started_at=seen - timedelta(minutes=5),
        seen_at=seen,
        stopped_at=seen if stopped else None,
    )


def _pending(bob: User, environment: Environment, *, age: float) -> Deployment:
    service = factories.make_service("checkout")
    deployment = factories.make_deployment(
        service=service, environment=environment, deployed_by=bob, status="PENDING"
    )
    Deployment.objects.filter(pk=deployment.pk).update(
        created_at=timezone.now() - timedelta(seconds=age)
    )
    deployment.refresh_from_db()
    return deployment


def test_the_deploy_page_says_no_worker_was_ever_seen(bob: User, staging_env: Environment) -> None:
    page = login(bob).get("/deploy/").content.decode()
    assert 'id="worker-banner"' in page
    assert "no deployment worker has been seen yet" in page
    assert "python manage.py rundeployments" in page


def test_the_deploy_page_says_how_long_since_the_last_worker_was_seen(
    bob: User, staging_env: Environment
) -> None:
    _beat(seconds_ago=120, stopped=True)
    page = login(bob).get("/deploy/").content.decode()
    assert "no deployment worker has been seen for 12" in page  # 120 s, or 121 on a slow run


def test_no_banner_while_a_worker_beats(bob: User, staging_env: Environment) -> None:
    _beat(seconds_ago=1)
    page = login(bob).get("/deploy/").content.decode()
    assert 'id="worker-banner"' not in page


def test_an_old_pending_deployment_says_why_it_waits(
    bob: User, staging_env: Environment, settings: Any
) -> None:
    settings.APOLLO_PENDING_WARN_SECONDS = 30
    deployment = _pending(bob, staging_env, age=95)
    page = login(bob).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "waiting for a deployment worker for 9" in page
    assert START in page.replace("&#x60;", "`")
    assert 'id="worker-banner"' in page


def test_a_young_pending_deployment_shows_no_reason_yet(
    bob: User, staging_env: Environment, settings: Any
) -> None:
    settings.APOLLO_PENDING_WARN_SECONDS = 30
    deployment = _pending(bob, staging_env, age=2)
    page = login(bob).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "waiting for a deployment worker" not in page


def test_readyz_reports_the_missing_worker_without_failing(db: None, settings: Any) -> None:
    settings.APOLLO_REDIS_URL = None
    _beat(seconds_ago=40)
    response = Client().get("/readyz")
    assert response.status_code == 200
    workers = response.json()["workers"]
    assert workers.startswith("no deployment worker has been seen for 4")
    assert START in workers


def test_readyz_says_ok_while_a_worker_beats(db: None, settings: Any) -> None:
    settings.APOLLO_REDIS_URL = None
    _beat(seconds_ago=0.5)
    assert Client().get("/readyz").json()["workers"] == "ok"


def test_the_api_says_why_an_old_pending_deployment_waits(
    bob: User, staging_env: Environment, settings: Any
) -> None:
    settings.APOLLO_PENDING_WARN_SECONDS = 30
    _beat(seconds_ago=300, stopped=True)
    deployment = _pending(bob, staging_env, age=60)
    token = {"Authorization": f"Token {factories.token_for(bob)}"}
    answer = Client().get(f"/api/v1/deployments/{deployment.pk}/", headers=token).json()
    assert answer["status"] == "PENDING"
    assert answer["status_reason"].startswith("waiting for a deployment worker for 6")
    assert "no deployment worker has been seen for 3" in answer["status_reason"]
    assert START in answer["status_reason"]
