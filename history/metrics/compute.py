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
  group) went from its version back to the version that ran before it.
- **Time to restore**: for each failure, from its finished_at to the finished_at of the next DONE
  deployment of the same target; the median (nearest rank). Failures not restored yet are counted
  apart.

Each figure is named with its band of the DORA State of DevOps report 2023: frequency elite at
one a day or more (on demand), high at one a week, medium at one a month, else low; lead time
elite under a day, high under a week, medium under a month (30 days), else low; change failure
rate elite up to 5 %, high up to 10 %, medium up to 15 %, else low; time to restore elite under
an hour, high under a day, medium under a week, else low.

Every figure is an aggregate or one row read at an offset of a sorted query: the work stays in
the database whatever the number of deployments (bench/metrics_bench.py: 100,000).
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from deployments.models import Deployment
from deployments.status import Status

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
MONTH = timedelta(days=30)
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


def _reverted() -> Exists:
    """A later DONE deployment of the same target went from this one's version back to the
    version that ran before it."""
    return Exists(
        Deployment.objects.filter(
            service_id=OuterRef("service_id"),
            environment_id=OuterRef("environment_id"),
            group_key=OuterRef("group_key"),
            pk__gt=OuterRef("pk"),
            status=Status.DONE,
            version_id=OuterRef("source_version_id"),
            source_version_id=OuterRef("version_id"),
        )
    )


COUNTED = ~Q(status=Status.CANCELED, started_at__isnull=True) & Q(
    status__in=[Status.DONE, Status.FAILED, Status.CANCELED]
)
FAILURE = (
    Q(status=Status.FAILED)
    | Q(status=Status.CANCELED, started_at__isnull=False)
    | Q(status=Status.DONE, reverted=True)
)


def _nearest_rank(rows: QuerySet[Any], column: str, n: int, p: float) -> timedelta | None:
    """The value at rank ceil(p x n) of rows sorted by column: one row read at an offset."""
    if n == 0:
        return None
    offset = max(math.ceil(p * n), 1) - 1
    value = rows.order_by(column, "pk").values_list(column, flat=True)[offset : offset + 1]
    found = list(value)
    return found[0] if found else None


def compute(rows: QuerySet[Deployment], period: Period) -> Metrics:
    """The figures of `rows` (already limited to what the user may view) over `period`."""
    begin, end = period.bounds
    finished = (
        rows.filter(finished_at__gte=begin, finished_at__lt=end)
        .order_by()
        .annotate(reverted=_reverted())
    )
    counts = finished.aggregate(
        deployments=Count("pk", filter=COUNTED),
        done=Count("pk", filter=Q(status=Status.DONE)),
        failures=Count("pk", filter=FAILURE),
    )
    deployments, done, failures = counts["deployments"], counts["done"], counts["failures"]

    lead = ExpressionWrapper(F("finished_at") - F("version__committed_at"), DurationField())
    leads = finished.filter(
        status=Status.DONE,
        version__committed_at__isnull=False,
        version__committed_at__lte=F("finished_at"),
    ).annotate(lead=lead)
    buckets: dict[str, Any] = {}
    lower = timedelta(0)
    for i, (_label, upper) in enumerate(LEAD_BUCKETS):
        condition = Q(lead__gte=lower) & (Q(lead__lt=upper) if upper is not None else Q())
        buckets[f"bucket{i}"] = Count("pk", filter=condition)
        lower = upper or lower
    lead_counts = leads.aggregate(n=Count("pk"), **buckets)
    n_leads = lead_counts.pop("n")

    next_done = Deployment.objects.filter(
        service_id=OuterRef("service_id"),
        environment_id=OuterRef("environment_id"),
        group_key=OuterRef("group_key"),
        status=Status.DONE,
        finished_at__gt=OuterRef("finished_at"),
    ).order_by("finished_at", "pk")
    broken = finished.filter(FAILURE).annotate(
        restored_at=Subquery(next_done.values("finished_at")[:1])
    )
    restores = broken.filter(restored_at__isnull=False).annotate(
        restore=ExpressionWrapper(F("restored_at") - F("finished_at"), DurationField())
    )
    restored = restores.count()

    per_day = {
        row["day"]: row
        for row in finished.annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(
            done=Count("pk", filter=Q(status=Status.DONE)),
            failures=Count("pk", filter=FAILURE),
        )
        .order_by("day")
    }
    days = []
    for i in range(period.days):
        day = period.start + timedelta(days=i)
        row = per_day.get(day) or {}
        days.append(DayCount(day, row.get("done", 0), row.get("failures", 0)))

    return Metrics(
        period=period,
        deployments=deployments,
        done=done,
        failures=failures,
        per_day=done / period.days,
        lead_time_median=_nearest_rank(leads, "lead", n_leads, 0.5),
        lead_time_p90=_nearest_rank(leads, "lead", n_leads, 0.9),
        lead_time_count=n_leads,
        change_failure_rate=failures / deployments if deployments else None,
        restore_median=_nearest_rank(restores, "restore", restored, 0.5),
        restored=restored,
        unrestored=failures - restored,
        days=days,
        lead_buckets=[
            (label, lead_counts[f"bucket{i}"]) for i, (label, _) in enumerate(LEAD_BUCKETS)
        ],
    )
