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

from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User

from deployments.models import Deployment
from history.metrics.compute import NO_DATA, Period, compute
from tests.metrics.history import PERIOD, make_story

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


def test_the_counts_are_a_constant_number_of_queries(
    alice: User, django_assert_max_num_queries: object
) -> None:
    story = make_story(alice)
    with django_assert_max_num_queries(8):  # type: ignore[operator]
        compute(Deployment.objects.filter(environment=story.staging), PERIOD)
