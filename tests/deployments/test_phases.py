"""The deployment page's phases: requested, applied, rolling out n of m pods, verdict, with a
progress figure, readable status names and the elapsed time (deployments.phases)."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.models import Deployment, Service
from deployments.phases import summarise
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

ROLLOUT = {"source": "rollout", "message": "1/3 updated, 1/3 ready, 1/3 available", "at": ""}


def _deployment(
    alice: User, service: Service, environment: Environment, **extra: Any
) -> Deployment:
    return factories.make_deployment(
        service=service, environment=environment, deployed_by=alice, **extra
    )


def test_a_rolling_deployment_counts_its_pods_and_its_time(
    alice: User, checkout: Service, production: Environment
) -> None:
    d = _deployment(alice, checkout, production, status=Status.STARTED, timeline=[ROLLOUT])
    d.applied_at = d.created_at + timedelta(seconds=1)
    summary = summarise(d, d.created_at + timedelta(seconds=4.6))
    assert [(p.name, p.state) for p in summary.phases] == [
        ("Requested", "done"),
        ("Applied", "done"),
        ("Rolling out", "current"),
        ("Verdict", "pending"),
    ]
    assert summary.phases[2].detail == "1 of 3 pods ready"
    assert summary.percent == 53
    assert summary.elapsed == "4.6 s"
    assert summary.status_label == "Started"


def test_a_failed_deployment_that_never_applied_says_so(
    alice: User, checkout: Service, production: Environment
) -> None:
    d = _deployment(
        alice, checkout, production, status=Status.FAILED, status_reason="blocked by policy"
    )
    d.finished_at = d.created_at + timedelta(minutes=2, seconds=3)
    summary = summarise(d, timezone.now())
    assert [(p.name, p.state) for p in summary.phases][1:] == [
        ("Applied", "skipped"),
        ("Rolling out", "skipped"),
        ("Verdict", "failed"),
    ]
    assert summary.phases[3].detail == "Failed: blocked by policy"
    assert summary.percent == 100
    assert summary.elapsed == "2 min 3 s"


def test_the_page_shows_the_phases_above_the_raw_timeline(
    alice: User, checkout: Service, production: Environment
) -> None:
    d = _deployment(
        alice, checkout, production, status=Status.PENDING_CANCELLATION, timeline=[ROLLOUT]
    )
    page = login(alice).get(f"/deployments/{d.pk}/").content.decode()
    assert page.index('id="phases"') < page.index('id="timeline"')
    assert "Pending cancellation" in page
    assert 'progress id="progress" max="100"' in page
    assert "Pending cancellation: rolling back" in page
