"""The worker banner's read (deployments.engine.heartbeat._newest_beat): one statement compiled
once, kept prepared on PostgreSQL, whose dates read as Django's (aware, in UTC) on both
databases, so the banner counts the seconds since the newest beat."""

from datetime import UTC, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from deployments.engine.heartbeat import _newest_beat, worker_absence
from deployments.models import WorkerHeartbeat
from tests.conftest import login
from tests.deploy_page_perf.test_ci_statuses_read import prepared_runs

pytestmark = pytest.mark.django_db


def _beat(name: str, *, seconds_ago: int, stopped: bool = False) -> None:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    WorkerHeartbeat.objects.create(
        name=name, started_at=seen, seen_at=seen, stopped_at=seen if stopped else None
    )


def test_no_beat_reads_as_none() -> None:
    assert _newest_beat() is None
    assert worker_absence().startswith("no deployment worker has been seen yet")


def test_the_newest_beat_is_read_with_aware_dates() -> None:
    _beat("old", seconds_ago=600)
    _beat("stopped", seconds_ago=120, stopped=True)
    newest = WorkerHeartbeat.objects.get(name="stopped")
    assert _newest_beat() == (newest.seen_at, newest.stopped_at)
    seen, stopped = _newest_beat() or (None, None)
    assert seen is not None
    assert seen.utcoffset() == timedelta(0)
    assert stopped is not None
    assert stopped.tzinfo == UTC
    assert "has been seen for 120 s" in worker_absence(now=newest.seen_at + timedelta(seconds=120))


def test_a_live_beat_hides_the_banner() -> None:
    _beat("stopped", seconds_ago=30, stopped=True)
    _beat("live", seconds_ago=1)
    assert _newest_beat() is not None
    assert worker_absence() == ""


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's prepared statements")
def test_the_banners_read_is_prepared_once_and_reused(bob: User) -> None:
    _beat("gone", seconds_ago=600)
    client = login(bob)
    for _ in range(7):
        assert "has been seen for" in client.get("/deploy/").content.decode()
    assert prepared_runs("deployments_workerheartbeat") == [7]
