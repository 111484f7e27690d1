"""The demo's four weeks of history: plausible, idempotent, finished, and the Metrics page's
figures for it match a computation in plain Python over the same rows."""

import math
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from deployments.demo_history import MARK
from deployments.models import DeployableVersion, Deployment
from deployments.status import Status
from history.metrics.compute import Period, compute
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo() -> None:
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command("seed_history", stdout=out)
    assert "deployments added" in out.getvalue()


def _rank(values: list[timedelta], p: float) -> timedelta | None:
    ordered = sorted(values)
    return ordered[max(math.ceil(p * len(ordered)), 1) - 1] if ordered else None


def _by_hand(rows: list[Deployment], start: datetime, end: datetime) -> dict[str, object]:
    """The definitions of history.metrics.compute, in plain Python over every row."""

    def target(d: Deployment) -> tuple[int, int, str]:
        return d.service_id, d.environment_id, d.group_key

    inside = [d for d in rows if d.finished_at and start <= d.finished_at < end]

    def reverted(d: Deployment) -> bool:
        return any(
            o.pk > d.pk
            and target(o) == target(d)
            and o.status == Status.DONE
            and o.version_id == d.source_version_id
            and o.source_version_id == d.version_id
            for o in rows
        )

    def failure(d: Deployment) -> bool:
        return (
            d.status == Status.FAILED
            or (d.status == Status.CANCELED and d.started_at is not None)
            or (d.status == Status.DONE and reverted(d))
        )

    counted = [
        d
        for d in inside
        if d.status in (Status.DONE, Status.FAILED)
        or (d.status == Status.CANCELED and d.started_at is not None)
    ]
    done = [d for d in inside if d.status == Status.DONE]
    leads = [
        d.finished_at - d.version.committed_at
        for d in done
        if d.finished_at and d.version.committed_at and d.version.committed_at <= d.finished_at
    ]
    restores = []
    for f in (d for d in inside if failure(d)):
        assert f.finished_at is not None
        after = [
            o.finished_at
            for o in rows
            if target(o) == target(f)
            and o.status == Status.DONE
            and o.finished_at
            and o.finished_at > f.finished_at
        ]
        if after:
            restores.append(min(after) - f.finished_at)
    failures = [d for d in inside if failure(d)]
    return {
        "deployments": len(counted),
        "done": len(done),
        "failures": len(failures),
        "lead_median": _rank(leads, 0.5),
        "lead_p90": _rank(leads, 0.9),
        "restore_median": _rank(restores, 0.5),
    }


@pytest.mark.usefixtures("demo")
def test_the_demo_history_is_finished_plausible_and_seeded_once() -> None:
    seeded = Deployment.objects.filter(request_id=MARK)
    assert seeded.count() > 60
    assert not seeded.exclude(status__in=[Status.DONE, Status.FAILED]).exists()
    assert seeded.filter(status=Status.FAILED).exists()
    assert not seeded.filter(finished_at__gt=timezone.now()).exists()
    assert {d.deployed_by.username for d in seeded.select_related("deployed_by")} == {
        "alice",
        "bob",
    }
    before = seeded.count(), DeployableVersion.objects.count()
    call_command("seed_history", stdout=StringIO())
    assert (seeded.count(), DeployableVersion.objects.count()) == before
    # The demo's registered versions stay the newest: the Deploy page offers them first.
    newest = DeployableVersion.objects.order_by("-created_at")[:4]
    assert all(not Deployment.objects.filter(version=v).exists() for v in newest)


@pytest.mark.usefixtures("demo")
def test_the_metrics_of_the_demo_match_a_computation_by_hand() -> None:
    today = timezone.localdate()
    period = Period(today - timedelta(days=29), today)
    begin, end = period.bounds
    rows = list(Deployment.objects.select_related("version").order_by("pk"))
    expected = _by_hand(rows, begin, end)
    m = compute(Deployment.objects.all(), period)
    assert (m.deployments, m.done, m.failures) == (
        expected["deployments"],
        expected["done"],
        expected["failures"],
    )
    assert m.lead_time_median == expected["lead_median"]
    assert m.lead_time_p90 == expected["lead_p90"]
    assert m.restore_median == expected["restore_median"]
    assert m.done > 0
    assert m.failures > 0
    assert m.restore_median is not None


@pytest.mark.usefixtures("demo")
def test_alice_sees_the_four_figures_of_the_demo() -> None:
    from django.contrib.auth.models import User

    alice = User.objects.get(username="alice")
    page = " ".join(login(alice).get("/history/metrics/").content.decode().split())
    assert " a day" in page
    assert "median " in page
    assert " %" in page
    assert page.count('class="band band-') == 4
