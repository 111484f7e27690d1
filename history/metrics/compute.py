"""The four DORA figures of a set of deployments over a period, computed in SQL.

Definitions (what the Metrics page and the API say, and what tests/metrics work out by hand):

- A deployment counts in the period when it *finished* in it (finished_at in [start, end + 1 day)).
- **Deployment frequency**: DONE deployments per day of the period.
- **Lead time for changes**: for each DONE deployment whose version has a commit time, finished_at
  minus the commit time; the median and the 90th percentile, by nearest rank (the value at rank
  ceil(p x n) of the n sorted values).
- **Change failure rate**: failures / deployments. A deployment is one that finished DONE, FAILED
  or CANCELED after it had started (one cancelled before it started never ran, and does not
  count). A failure is one that ended FAILED, one cancelled after it started (rolled back), or a
  DONE one that was reverted: a later DONE deployment of the same target (service, environment,
  group) went from its version back to the version that ran before it, or a DONE one whose
  version is marked bad in its environment now (deployments.models.BadVersion, a mark in force).
- **Time to restore**: for each failure, from its finished_at to the finished_at of the next DONE
  deployment of the same target; the median (nearest rank). Failures not restored yet are counted
  apart.

Each figure is named with its band of the DORA State of DevOps report 2023: frequency elite at
one a day or more (on demand), high at one a week, medium at one a month, else low; lead time
elite under a day, high under a week, medium under a month (30 days), else low; change failure
rate elite up to 5 %, high up to 10 %, medium up to 15 %, else low; time to restore elite under
an hour, high under a day, medium under a week, else low.

Times are whole seconds for lead times and milliseconds for the rest (history.metrics.outcomes
keeps each deployment's figures as integers, in a table of their own). Every figure is one
grouped aggregate or one row read at an offset of a sorted query over that table: the work stays
in the database whatever the number of deployments (bench/metrics_bench.py: 100,000).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import (
    BigIntegerField,
    Count,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.utils import timezone

from deployments.models import BadVersion, DeployableVersion
from history.metrics.outcomes import Outcome, sync_outcomes, to_ms
from history.models import DeploymentOutcome

if TYPE_CHECKING:
    from deployments.models import Deployment

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
MONTH = timedelta(days=30)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# Lead-time histogram buckets: (label, upper bound).
LEAD_BUCKETS: list[tuple[str, timedelta | None]] = [
    ("< 1 hour", HOUR),
    ("< 1 day", DAY),
    ("< 1 week", WEEK),
    ("< 1 month", MONTH),
    ("1 month or more", None),
]
NO_DATA = "no data"


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        tz = timezone.get_current_timezone()
        begin = datetime.combine(self.start, time.min, tzinfo=tz)
        return begin, datetime.combine(self.end + DAY, time.min, tzinfo=tz)


@dataclass(frozen=True)
class DayCount:
    day: date
    done: int
    failures: int


@dataclass(frozen=True)
class Metrics:
    period: Period
    deployments: int
    done: int
    failures: int
    per_day: float
    lead_time_median: timedelta | None
    lead_time_p90: timedelta | None
    lead_time_count: int
    change_failure_rate: float | None
    restore_median: timedelta | None
    restored: int
    unrestored: int
    days: list[DayCount] = field(default_factory=list)
    lead_buckets: list[tuple[str, int]] = field(default_factory=list)

    @property
    def frequency_band(self) -> str:
        if self.done == 0:
            return NO_DATA
        return _band(self.per_day, [(1.0, "elite"), (1 / 7, "high"), (1 / 30, "medium")], ge=True)

    @property
    def lead_time_band(self) -> str:
        if self.lead_time_median is None:
            return NO_DATA
        return _band(self.lead_time_median, [(DAY, "elite"), (WEEK, "high"), (MONTH, "medium")])

    @property
    def change_failure_band(self) -> str:
        if self.change_failure_rate is None:
            return NO_DATA
        rate = self.change_failure_rate
        if rate <= 0.05:
            return "elite"
        return "high" if rate <= 0.10 else "medium" if rate <= 0.15 else "low"

    @property
    def restore_band(self) -> str:
        if self.restore_median is None:
            return NO_DATA
        return _band(self.restore_median, [(HOUR, "elite"), (DAY, "high"), (WEEK, "medium")])

    def as_dict(self) -> dict[str, Any]:
        """The export (API JSON): durations in seconds, dates ISO."""

        def seconds(value: timedelta | None) -> float | None:
            return None if value is None else value.total_seconds()

        return {
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "days": self.period.days,
            "deployments": self.deployments,
            "done": self.done,
            "failures": self.failures,
            "deployment_frequency_per_day": round(self.per_day, 4),
            "deployment_frequency_band": self.frequency_band,
            "lead_time_median_seconds": seconds(self.lead_time_median),
            "lead_time_p90_seconds": seconds(self.lead_time_p90),
            "lead_time_deployments": self.lead_time_count,
            "lead_time_band": self.lead_time_band,
            "change_failure_rate": None
            if self.change_failure_rate is None
            else round(self.change_failure_rate, 4),
            "change_failure_rate_band": self.change_failure_band,
            "time_to_restore_median_seconds": seconds(self.restore_median),
            "restored_failures": self.restored,
            "unrestored_failures": self.unrestored,
            "time_to_restore_band": self.restore_band,
            "per_day": [
                {"day": d.day.isoformat(), "done": d.done, "failures": d.failures}
                for d in self.days
            ],
        }


def _band(value: Any, limits: list[tuple[Any, str]], *, ge: bool = False) -> str:
    for limit, name in limits:
        if (value >= limit) if ge else (value < limit):
            return name
    return "low"


def _nearest_rank(n: int, numerator: int, denominator: int) -> int:
    """The 0-based offset of rank ceil(p x n), p = numerator / denominator, in integers (in
    floats, 0.9 x 10 could round up to rank 10)."""
    return max(-(-numerator * n // denominator), 1) - 1


def _values_at(rows: QuerySet[Any], column: str, n: int, *ranks: tuple[int, int]) -> list[Any]:
    """The values at ranks ceil(p x n) (p = numerator / denominator; one or two ranks) of rows
    sorted by column, from one sort: the least and the greatest of the sorted slice from the
    first rank to the last."""
    if n == 0:
        return [None] * len(ranks)
    offsets = [_nearest_rank(n, *rank) for rank in ranks]
    first, last = min(offsets), max(offsets)
    ends = (
        rows.order_by(column)
        .values(column)[first : last + 1]
        .aggregate(low=Min(column), high=Max(column))
    )
    return [ends["low"] if offset == first else ends["high"] for offset in offsets]


def _bad_versions() -> Q:
    """DONE deployments whose version is marked bad (a mark in force) in their environment:
    one condition per environment holding marks, so its size follows the marks, not the rows."""
    marks = (
        BadVersion.objects.active()
        .annotate(
            version_id=Subquery(
                DeployableVersion.objects.filter(
                    service_id=OuterRef("service_id"), git_commit_sha=OuterRef("sha")
                ).values("pk")[:1]
            )
        )
        .values_list("environment_id", "version_id")
    )
    by_environment: dict[int, set[int]] = defaultdict(set)
    for environment, version in marks:
        if version is not None:
            by_environment[environment].add(version)
    condition = Q(pk__in=[])  # nothing
    for environment, versions in sorted(by_environment.items()):
        condition |= Q(environment_id=environment, version_id__in=sorted(versions))
    return Q(outcome=Outcome.DONE) & condition


def _day_slots(period: Period) -> tuple[int, int, list[date]]:
    """How to group a period's rows by local day in integer arithmetic: (begin in ms, slot
    length in ms, the day of each slot). Days are slots of 24 h when the time zone's days all
    last 24 h in the period; else (a daylight-saving change) slots are hours, each given the
    local day it starts in."""
    begin, end = period.bounds
    tz = timezone.get_current_timezone()
    start = to_ms(begin)
    if to_ms(end) - start == period.days * DAY_MS:
        return start, DAY_MS, [period.start + timedelta(days=i) for i in range(period.days)]
    hours = (to_ms(end) - start) // HOUR_MS
    utc = begin.astimezone(UTC)  # hours in absolute time (aware arithmetic is wall-clock)
    return start, HOUR_MS, [(utc + i * HOUR).astimezone(tz).date() for i in range(hours)]


def compute(scope: "QuerySet[Deployment] | Q", period: Period) -> Metrics:
    """The figures of the deployments in scope (already limited to what the user may view)
    over period. `scope`: a filter on DeploymentOutcome's service_id and environment_id (the
    pages), or a queryset of deployments (tests, by hand).

    Constant SQL: the sync (two reads when nothing ended since the last view), the bad
    versions, one grouped aggregate for the counts, the buckets and the days, one sorted read
    for the lead time's median and p90 and one for the restore median: 6 statements."""
    sync_outcomes()
    where = scope if isinstance(scope, Q) else Q(deployment__in=scope.values("pk"))
    begin, slot, slot_days = _day_slots(period)
    rows = DeploymentOutcome.objects.filter(
        where, finished_ms__gte=begin, finished_ms__lt=begin + len(slot_days) * slot
    )
    failure = (
        Q(outcome__in=[Outcome.FAILED, Outcome.ROLLED_BACK])
        | Q(outcome=Outcome.DONE, reverted=True)
        | _bad_versions()
    )
    buckets: dict[str, Any] = {}
    lower = 0
    for i, (_label, upper) in enumerate(LEAD_BUCKETS):
        bound = Q(lead_seconds__lt=upper.total_seconds()) if upper is not None else Q()
        buckets[f"bucket{i}"] = Count("pk", filter=Q(lead_seconds__gte=lower) & bound)
        lower = int(upper.total_seconds()) if upper is not None else lower
    # Times in ms pass 2**31: typed as bigint, or psycopg's server-side binding would send
    # them as Django's default for an int (int4) and PostgreSQL would read them wrapped.
    start_ms, slot_ms = Value(begin, BigIntegerField()), Value(slot, BigIntegerField())
    grouped = (
        rows.annotate(
            slot=ExpressionWrapper((F("finished_ms") - start_ms) / slot_ms, BigIntegerField())
        )
        .values("slot")
        .annotate(
            counted=Count("pk", filter=~Q(outcome=Outcome.NOT_RUN)),
            done=Count("pk", filter=Q(outcome=Outcome.DONE)),
            failures=Count("pk", filter=failure),
            restored=Count("pk", filter=failure & Q(next_done_ms__isnull=False)),
            leads=Count("lead_seconds"),
            **buckets,
        )
        .order_by("slot")
    )
    totals: Counter[str] = Counter()
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    for group in grouped:
        day = slot_days[group.pop("slot")]
        totals.update(group)
        per_day[day].update(done=group["done"], failures=group["failures"])
    days = [
        DayCount(day, per_day[day]["done"], per_day[day]["failures"])
        for day in sorted(set(slot_days))
    ]

    n_leads, restored = totals["leads"], totals["restored"]
    leads = rows.filter(lead_seconds__isnull=False)
    restores = rows.filter(failure, next_done_ms__isnull=False).annotate(
        restore_ms=ExpressionWrapper(F("next_done_ms") - F("finished_ms"), BigIntegerField())
    )
    median, p90 = _values_at(leads, "lead_seconds", n_leads, (1, 2), (9, 10))
    (restore,) = _values_at(restores, "restore_ms", restored, (1, 2))
    deployments, done, failures = totals["counted"], totals["done"], totals["failures"]
    return Metrics(
        period=period,
        deployments=deployments,
        done=done,
        failures=failures,
        per_day=done / period.days,
        lead_time_median=None if median is None else timedelta(seconds=median),
        lead_time_p90=None if p90 is None else timedelta(seconds=p90),
        lead_time_count=n_leads,
        change_failure_rate=failures / deployments if deployments else None,
        restore_median=None if restore is None else timedelta(milliseconds=restore),
        restored=restored,
        unrestored=failures - restored,
        days=days,
        lead_buckets=[(label, totals[f"bucket{i}"]) for i, (label, _) in enumerate(LEAD_BUCKETS)],
    )
