"""Time window blockers: days, time zones, windows across midnight, a controllable clock."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User

from deployments.models import DeployableVersion
from environments.models import Environment
from permissions.blockers import evaluate
from permissions.models import Blocker
from tests import factories

pytestmark = pytest.mark.django_db

# 2025-06-06 is a Friday; Berlin is UTC+2 in June (CEST).
FRIDAY = 6


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 6, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def version() -> DeployableVersion:
    return factories.make_version(factories.make_service("checkout"), branch="main")


def _refused(
    bob: User, production: Environment, version: DeployableVersion, now: datetime
) -> list[str]:
    refusals = evaluate(
        user=bob, service=version.service, environment=production, version=version, now=now
    )
    return [r.reason for r in refusals]


@pytest.fixture
def friday_freeze() -> Blocker:
    return Blocker.objects.create(
        name="Friday freeze",
        kind=Blocker.Kind.TIME_WINDOW,
        availability="production",
        config={"days": [4], "start": "12:00", "end": "23:59", "timezone": "Europe/Berlin"},
    )


def test_the_friday_freeze_blocks_friday_afternoon_in_berlin_with_the_reason(
    bob: User, production: Environment, version: DeployableVersion, friday_freeze: Blocker
) -> None:
    assert _refused(bob, production, version, at(FRIDAY, 10, 30)) == [
        "Blocked by 'Friday freeze' (time window): deployments to production are blocked on "
        "Fridays 12:00\N{EN DASH}23:59 Europe/Berlin"
    ]


@pytest.mark.parametrize(
    "now",
    [
        at(FRIDAY, 9, 59),  # 11:59 in Berlin
        at(FRIDAY, 22, 0),  # already Saturday 00:00 in Berlin, though still Friday in UTC
        at(FRIDAY - 1, 12, 0),  # Thursday
    ],
)
def test_the_friday_freeze_reads_the_berlin_clock_not_utc(
    bob: User,
    production: Environment,
    version: DeployableVersion,
    friday_freeze: Blocker,
    now: datetime,
) -> None:
    assert _refused(bob, production, version, now) == []


@pytest.mark.parametrize(
    "now",
    [at(FRIDAY, 10, 0), at(FRIDAY, 21, 59, 59)],  # 12:00 and 23:59:59 in Berlin
)
def test_both_ends_of_the_window_are_inside(
    bob: User,
    production: Environment,
    version: DeployableVersion,
    friday_freeze: Blocker,
    now: datetime,
) -> None:
    assert len(_refused(bob, production, version, now)) == 1


@pytest.fixture
def night_window() -> Blocker:
    return Blocker.objects.create(
        name="Night",
        kind=Blocker.Kind.TIME_WINDOW,
        config={"days": [4], "start": "22:00", "end": "02:00", "timezone": "UTC"},
    )


@pytest.mark.parametrize(
    ("now", "blocked"),
    [
        (at(FRIDAY, 21, 59), False),
        (at(FRIDAY, 22, 0), True),
        (at(FRIDAY, 23, 59), True),
        (at(FRIDAY + 1, 0, 0), True),  # Saturday: the window started on Friday
        (at(FRIDAY + 1, 2, 0, 59), True),
        (at(FRIDAY + 1, 2, 1), False),
        (at(FRIDAY - 1, 23, 0), False),  # Thursday night is not in the window
        (at(FRIDAY, 1, 0), False),  # Friday early morning belongs to Thursday's window
        (at(FRIDAY + 1, 23, 0), False),  # Saturday night
    ],
)
def test_a_window_across_midnight_belongs_to_the_day_it_starts(
    bob: User,
    production: Environment,
    version: DeployableVersion,
    night_window: Blocker,
    now: datetime,
    blocked: bool,
) -> None:
    assert bool(_refused(bob, production, version, now)) is blocked


def test_a_window_across_midnight_in_another_time_zone(
    bob: User, production: Environment, version: DeployableVersion
) -> None:
    Blocker.objects.create(
        name="Tokyo night",
        kind=Blocker.Kind.TIME_WINDOW,
        config={
            "days": [0, 1, 2, 3, 4],
            "start": "23:00",
            "end": "06:00",
            "timezone": "Asia/Tokyo",
        },
    )
    # Friday 20:30 UTC is Saturday 05:30 in Tokyo: the tail of Friday's window.
    assert _refused(bob, production, version, at(FRIDAY, 20, 30)) == [
        "Blocked by 'Tokyo night' (time window): deployments are blocked on Mondays, Tuesdays, "
        "Wednesdays, Thursdays and Fridays 23:00\N{EN DASH}06:00 Asia/Tokyo"
    ]
    # Saturday 21:30 UTC is Sunday 06:30 in Tokyo... and Sunday 14:30 UTC is Sunday 23:30.
    assert _refused(bob, production, version, at(FRIDAY + 1, 21, 30)) == []
    assert _refused(bob, production, version, at(FRIDAY + 2, 14, 30)) == []


def test_the_clock_defaults_to_now_and_must_be_time_zone_aware(
    bob: User, production: Environment, version: DeployableVersion
) -> None:
    Blocker.objects.create(
        name="Always",
        kind=Blocker.Kind.TIME_WINDOW,
        config={"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "23:59", "timezone": "UTC"},
    )
    reasons = evaluate(user=bob, service=version.service, environment=production, version=version)
    assert reasons[0].reason.endswith("every day 00:00\N{EN DASH}23:59 UTC")
    with pytest.raises(ValueError, match="aware"):
        evaluate(
            user=bob,
            service=version.service,
            environment=production,
            version=version,
            now=datetime(2025, 6, 6, 12, 0),  # naive on purpose
        )
