"""The metrics' own table follows the deployments from view to view: what ends after a view is
counted at the next, reverts and restores reach back to earlier rows, and the figures are the
same as when the table is built in one go (tests/metrics/history.py, worked out by hand in
test_compute)."""

import io
import threading
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.db.models import Q

from deployments.models import Deployment
from deployments.status import Status
from history.metrics.compute import Metrics, Period, compute
from history.metrics.outcomes import FULL_RECOMPUTE
from history.models import DeploymentOutcome
from tests import factories
from tests.metrics.history import PERIOD, Story, at, make_story

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)


def staging_figures(story: Story) -> Metrics:
    return compute(Q(environment_id=story.staging.pk), PERIOD)


def from_scratch(story: Story) -> Metrics:
    DeploymentOutcome.objects.all().delete()
    return staging_figures(story)


def later(story: Story, version: str, status: str, finished: int, source: str) -> None:
    factories.make_deployment(
        service=story.service,
        environment=story.staging,
        deployed_by=story.deployments["d1"].deployed_by,
        version=story.versions[version],
        source_version=story.versions[source],
        status=status,
        started_at=at(10, finished),
        finished_at=at(10, finished),
    )


def test_a_revert_after_a_view_makes_the_reverted_deployment_a_failure(alice: User) -> None:
    """d13, 10 March 22:00, takes v5 back to v3: d9 (v3 -> v5) is reverted, d12 (FAILED at
    20:00) is restored after 2 h, d9 after 36 h. Failures 5 / 10; restores 2 2 2 24 36: the
    median is rank 3, 2 h; none left unrestored."""
    story = make_story(alice)
    assert staging_figures(story).failures == 4
    later(story, "v3", Status.DONE, 22, source="v5")
    m = staging_figures(story)
    assert (m.deployments, m.done, m.failures) == (10, 7, 5)
    assert (m.restore_median, m.restored, m.unrestored) == (2 * H, 5, 0)
    assert m == from_scratch(story)


def test_a_deployment_seeded_out_of_order_shortens_an_earlier_restore(alice: User) -> None:
    """A DONE (v1, reverting nothing) finishing 3 March 7:00, written after a view: d3 (FAILED
    at 6:00) is restored after 1 h instead of 2 h."""
    story = make_story(alice)
    staging_figures(story)
    factories.make_deployment(
        service=story.service,
        environment=story.staging,
        deployed_by=alice,
        version=story.versions["v1"],
        source_version=story.versions["v3"],
        started_at=at(3, 7),
        finished_at=at(3, 7),
    )
    m = staging_figures(story)
    assert (m.done, m.failures, m.restored) == (7, 4, 3)
    restores = DeploymentOutcome.objects.get(deployment=story.deployments["d3"])
    assert restores.next_done_ms is not None
    assert restores.finished_ms is not None
    assert restores.next_done_ms - restores.finished_ms == 3_600_000
    assert m == from_scratch(story)


def test_a_deployment_running_at_a_view_is_counted_once_it_has_ended(alice: User) -> None:
    service = factories.make_service("live")
    staging = factories.make_environment("staging", availability="staging")
    deployment = factories.make_deployment(
        service=service, environment=staging, deployed_by=alice, status=Status.PENDING
    )
    today = Period(date.today() - timedelta(days=1), date.today() + timedelta(days=1))
    assert compute(Deployment.objects.all(), today).deployments == 0
    assert DeploymentOutcome.objects.get(deployment=deployment).final is False
    deployment.transition_to(Status.STARTED)
    assert compute(Deployment.objects.all(), today).deployments == 0
    deployment.transition_to(Status.FAILED, reason="crash loop")
    m = compute(Deployment.objects.all(), today)
    assert (m.deployments, m.done, m.failures, m.unrestored) == (1, 0, 1, 1)


def test_a_large_catch_up_gives_the_hand_computed_figures(alice: User) -> None:
    """More rows than FULL_RECOMPUTE ended since the last view (the first view after an
    upgrade): every row's next DONE and reverted are recomputed in one go, to the same figures."""
    story = make_story(alice)
    other = factories.make_environment("other", availability="staging")
    version = story.versions["v1"]
    Deployment.objects.bulk_create(
        Deployment(
            service=story.service,
            environment=other,
            version=version,
            deployed_by=alice,
            status=Status.DONE,
            started_at=at(1) + i * timedelta(minutes=1),
            finished_at=at(1) + i * timedelta(minutes=1),
        )
        for i in range(FULL_RECOMPUTE + 1)
    )
    m = staging_figures(story)
    assert (m.deployments, m.done, m.failures) == (9, 6, 4)
    assert (m.lead_time_median, m.lead_time_p90) == (12 * H, 86 * H)
    assert (m.restore_median, m.restored, m.unrestored) == (2 * H, 3, 1)


def _queries(call: object, django_assert_num_queries: object, n: int) -> None:
    with django_assert_num_queries(n):  # type: ignore[operator]
        call()  # type: ignore[operator]


def test_a_view_is_a_constant_number_of_queries_whatever_the_history(
    alice: User, django_assert_num_queries: object
) -> None:
    """Six statements once the table is up to date (the sync's two reads, the bad versions,
    the grouped counts, the lead-time ranks, the restore rank), however many deployments; a
    deployment that ended since adds its upsert and the three updates it triggers."""
    story = make_story(alice)
    staging_figures(story)
    _queries(lambda: staging_figures(story), django_assert_num_queries, 6)
    for day in range(1, 10):
        later(story, "v4", Status.FAILED, day, source="v5")
    staging_figures(story)
    _queries(lambda: staging_figures(story), django_assert_num_queries, 6)
    later(story, "v3", Status.DONE, 23, source="v5")
    # + savepoint, upsert, 3 updates, release (and PostgreSQL's advisory lock)
    lock = 1 if connection.vendor == "postgresql" else 0
    _queries(lambda: staging_figures(story), django_assert_num_queries, 12 + lock)


@pytest.mark.django_db(transaction=True)
def test_views_syncing_at_once_write_the_same_figures(alice: User) -> None:
    """Four views catch up at the same moment (a barrier lines them up): none fails, and the
    figures are the hand-computed ones."""
    story = make_story(alice)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def view() -> None:
        try:
            barrier.wait(timeout=30)
            staging_figures(story)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=view) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    m = staging_figures(story)
    assert (m.deployments, m.done, m.failures) == (9, 6, 4)
    assert (m.restore_median, m.restored, m.unrestored) == (2 * H, 3, 1)
    assert DeploymentOutcome.objects.count() == Deployment.objects.count()


def test_a_deployment_committed_after_a_later_one_was_seen_is_counted(alice: User) -> None:
    """On PostgreSQL an id is taken when a transaction inserts and is seen when it commits:
    d12 (FAILED, 10 March) is made unseen below the highest id seen (d11), as if it had
    committed after d11; the next view counts it."""
    story = make_story(alice)
    staging_figures(story)
    DeploymentOutcome.objects.filter(deployment=story.deployments["d12"]).delete()
    m = staging_figures(story)
    assert (m.deployments, m.done, m.failures, m.unrestored) == (9, 6, 4, 1)
    assert DeploymentOutcome.objects.count() == Deployment.objects.count()


def test_sync_metrics_catches_up_before_any_view_with_the_same_figures(alice: User) -> None:
    story = make_story(alice)
    out = io.StringIO()
    call_command("sync_metrics", stdout=out)
    assert DeploymentOutcome.objects.count() == Deployment.objects.count()
    assert out.getvalue().startswith(f"metrics table up to date: {Deployment.objects.count()} ")
    figures = staging_figures(story)
    assert figures == from_scratch(story)
    call_command("sync_metrics", stdout=io.StringIO())  # again: nothing to do, no error
    assert DeploymentOutcome.objects.count() == Deployment.objects.count()
