"""The four figures of a hand-made history, worked out by hand (tests/metrics/history.py).

Staging, 1-10 March (10 days):
- counted: d1 d2 d3 d4 d5 d6 d8 d9 d12 = 9 (d7 was cancelled before it started; d10 finished
  in February); DONE: d1 d2 d4 d5 d6 d9 = 6, so 0.6 a day (high: at least weekly, not daily).
- failures: d3 FAILED, d5 reverted by d6 (v4 back to v3), d8 cancelled after it started, d12
  FAILED = 4; 4 / 9 = 44 % (low).
- lead times (commit -> DONE): d1 2 h, d2 12 h, d4 8 h, d5 24 h, d6 86 h (v3 committed 3 March
  0:00, d6 done 6 March 14:00); d9's version has no commit time. Sorted 2 8 12 24 86: the median
  is rank ceil(2.5) = 3: 12 h (elite: under a day); p90 rank ceil(4.5) = 5: 86 h.
- restores: d3 -> d4 2 h, d5 -> d6 2 h, d8 -> d9 24 h; d12 is not restored. Median rank 2: 2 h
  (high: under a day).
Team-wide, production's d11 (lead 1 h) joins: 10 counted, 7 DONE, 4 failures; leads 1 2 8 12 24
86: median rank 3 = 8 h, p90 rank ceil(5.4) = 6 = 86 h.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from deployments.models import BadVersion, Deployment
from history.metrics.compute import NO_DATA, Period, compute
from tests import factories
from tests.metrics.history import PERIOD, at, make_story

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)


def test_the_staging_figures_match_the_hand_computation(alice: User) -> None:
    story = make_story(alice)
    m = compute(Deployment.objects.filter(environment=story.staging), PERIOD)
    assert (m.deployments, m.done, m.failures) == (9, 6, 4)
    assert m.per_day == pytest.approx(0.6)
    assert m.frequency_band == "high"
    assert (m.lead_time_median, m.lead_time_p90, m.lead_time_count) == (12 * H, 86 * H, 5)
    assert m.lead_time_band == "elite"
    assert m.change_failure_rate == pytest.approx(4 / 9)
    assert m.change_failure_band == "low"
    assert (m.restore_median, m.restored, m.unrestored) == (2 * H, 3, 1)
    assert m.restore_band == "high"
    assert m.lead_buckets == [
        ("< 1 hour", 0),
        ("< 1 day", 3),
        ("< 1 week", 2),
        ("< 1 month", 0),
        ("1 month or more", 0),
    ]
    by_day = {d.day.day: (d.done, d.failures) for d in m.days}
    assert len(m.days) == 10
    assert by_day == {
        1: (1, 0),
        2: (1, 0),
        3: (1, 1),
        4: (0, 0),
        5: (0, 0),
        6: (2, 1),
        7: (0, 0),
        8: (0, 1),
        9: (1, 0),
        10: (0, 1),
    }


def test_the_team_wide_figures_include_every_environment(alice: User) -> None:
    make_story(alice)
    m = compute(Deployment.objects.all(), PERIOD)
    assert (m.deployments, m.done, m.failures) == (10, 7, 4)
    assert (m.lead_time_median, m.lead_time_p90) == (8 * H, 86 * H)
    assert m.change_failure_rate == pytest.approx(0.4)


def test_an_empty_period_has_no_data_and_no_band(alice: User) -> None:
    make_story(alice)
    m = compute(Deployment.objects.all(), Period(date(2025, 1, 1), date(2025, 1, 31)))
    assert (m.deployments, m.done, m.per_day) == (0, 0, 0)
    assert m.lead_time_median is None
    assert m.change_failure_rate is None
    assert m.restore_median is None
    bands = {m.frequency_band, m.lead_time_band, m.change_failure_band, m.restore_band}
    assert bands == {NO_DATA}


def test_a_done_deployment_whose_version_is_marked_bad_is_a_failure(alice: User) -> None:
    """v2 marked bad in staging: d2 (DONE, v2) becomes a failure, restored by d4 (3 March 8:00)
    11 h after it finished (2 March 21:00). Failures 5 / 9; restores 2 2 11 24 h: the median is
    rank 2, 2 h. A mark in production, or one undone, changes nothing in staging."""
    story = make_story(alice)
    staging = Q(environment_id=story.staging.pk)
    sha = story.versions["v2"].git_commit_sha
    BadVersion.objects.create(
        service=story.service, environment=story.production, sha=sha, reason="prod only"
    )
    assert compute(staging, PERIOD).failures == 4
    mark = BadVersion.objects.create(
        service=story.service, environment=story.staging, sha=sha, reason="broke checkout"
    )
    m = compute(staging, PERIOD)
    assert (m.deployments, m.done, m.failures) == (9, 6, 5)
    assert m.change_failure_rate == pytest.approx(5 / 9)
    assert (m.restore_median, m.restored, m.unrestored) == (2 * H, 4, 1)
    assert {d.day.day: d.failures for d in m.days}[2] == 1
    BadVersion.objects.filter(pk=mark.pk).update(unmarked_at=timezone.now())
    assert compute(staging, PERIOD).failures == 4


def test_the_edges_of_a_period_are_its_first_midnight_in_and_the_next_one_out(
    alice: User,
) -> None:
    """A one-day period, 5 March: a DONE at 5 March 0:00 counts, one at 6 March 0:00 does not
    (it is the next day's), one at 4 March 23:59:59.999 does not."""
    service = factories.make_service("edges")
    staging = factories.make_environment("staging", availability="staging")

    def done(moment: datetime) -> None:
        factories.make_deployment(
            service=service,
            environment=staging,
            deployed_by=alice,
            version=factories.make_version(service, committed_at=moment - 3 * H),
            started_at=moment,
            finished_at=moment,
        )

    done(at(5, 0))
    done(at(6, 0))
    done(at(5, 0) - timedelta(milliseconds=1))
    m = compute(Deployment.objects.all(), Period(date(2026, 3, 5), date(2026, 3, 5)))
    assert (m.deployments, m.done, m.per_day) == (1, 1, 1.0)
    assert [(d.day, d.done) for d in m.days] == [(date(2026, 3, 5), 1)]
    assert (m.lead_time_median, m.lead_time_p90) == (3 * H, 3 * H)
    m = compute(Deployment.objects.all(), Period(date(2026, 3, 4), date(2026, 3, 6)))
    assert [d.done for d in m.days] == [1, 1, 1]


def test_ten_lead_times_have_their_p90_at_rank_nine(alice: User) -> None:
    """Nearest rank in integers: ceil(0.9 x 10) = 9 (in floats 0.9 x 10 may round above 9)."""
    service = factories.make_service("ranks")
    staging = factories.make_environment("staging", availability="staging")
    for hours in range(1, 11):
        finished = at(2, hours)
        factories.make_deployment(
            service=service,
            environment=staging,
            deployed_by=alice,
            version=factories.make_version(service, committed_at=finished - hours * H),
            started_at=finished,
            finished_at=finished,
        )
    m = compute(Deployment.objects.all(), PERIOD)
    assert (m.lead_time_median, m.lead_time_p90, m.lead_time_count) == (5 * H, 9 * H, 10)


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York"])
def test_the_days_follow_the_time_zone_across_a_daylight_saving_change(
    alice: User, zone: str
) -> None:
    """Paris moves its clocks forward on 29 March 2026 (a 23-hour day), New York on 8 March:
    each deployment is counted on its local day, and the day of the change is one day."""
    service = factories.make_service("zones")
    staging = factories.make_environment("staging", availability="staging")
    with timezone.override(zone):
        tz = timezone.get_current_timezone()
        local = [
            datetime(2026, 3, 7, 23, 30, tzinfo=tz),
            datetime(2026, 3, 8, 0, 30, tzinfo=tz),
            datetime(2026, 3, 8, 23, 30, tzinfo=tz),
            datetime(2026, 3, 28, 23, 30, tzinfo=tz),
            datetime(2026, 3, 29, 23, 30, tzinfo=tz),
            datetime(2026, 3, 30, 0, 30, tzinfo=tz),
        ]
        for moment in local:
            factories.make_deployment(
                service=service,
                environment=staging,
                deployed_by=alice,
                started_at=moment.astimezone(UTC),
                finished_at=moment.astimezone(UTC),
            )
        m = compute(Deployment.objects.all(), Period(date(2026, 3, 7), date(2026, 3, 30)))
    per_day = {d.day: d.done for d in m.days if d.done}
    assert per_day == {
        date(2026, 3, 7): 1,
        date(2026, 3, 8): 2,
        date(2026, 3, 28): 1,
        date(2026, 3, 29): 1,
        date(2026, 3, 30): 1,
    }
    assert len(m.days) == 24
    assert m.done == 6
