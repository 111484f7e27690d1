"""permissions.blockers.evaluate: scope, active flag, exemptions, fail closed, no writes."""

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import DeployableVersion, Service
from environments.models import Environment
from permissions.blockers import Refusal, evaluate
from permissions.models import Blocker
from tests import factories

pytestmark = pytest.mark.django_db
NOW = datetime(2025, 6, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging-1", availability="staging")


@pytest.fixture
def version(checkout: Service) -> DeployableVersion:
    return factories.make_version(checkout, sha="a" * 40, branch="main")


def block(name: str, **fields: Any) -> Blocker:
    fields.setdefault("kind", Blocker.Kind.UNCONDITIONAL)
    return Blocker.objects.create(name=name, **fields)


def names(user: User, environment: Environment, version: DeployableVersion, **kw: Any) -> list[str]:
    refusals = evaluate(
        user=user, service=version.service, environment=environment, version=version, now=NOW, **kw
    )
    return [r.name for r in refusals]


@pytest.mark.parametrize(
    ("scope", "blocks_production", "blocks_staging"),
    [
        ("global", True, True),
        ("availability", True, False),
        ("environment", True, False),
        ("service", True, True),
        ("other_service", False, False),
        ("service_in_availability", True, False),
    ],
)
def test_a_blocker_refuses_only_inside_its_scope(
    bob: User,
    checkout: Service,
    production: Environment,
    staging: Environment,
    version: DeployableVersion,
    scope: str,
    blocks_production: bool,
    blocks_staging: bool,
) -> None:
    scopes: dict[str, dict[str, Any]] = {
        "global": {},
        "availability": {"availability": "production"},
        "environment": {"environment": production},
        "service": {"service": checkout},
        "other_service": {"service": factories.make_service("billing")},
        "service_in_availability": {"service": checkout, "availability": "production"},
    }
    block("freeze", **scopes[scope])
    assert bool(names(bob, production, version)) is blocks_production
    assert bool(names(bob, staging, version)) is blocks_staging


def test_an_inactive_blocker_refuses_nothing(
    bob: User, production: Environment, version: DeployableVersion
) -> None:
    block("freeze", active=False)
    assert names(bob, production, version) == []


def test_an_exempt_user_gets_no_refusal_from_that_blocker_only(
    bob: User, carol: User, production: Environment, version: DeployableVersion
) -> None:
    exempting = block("exempting")
    exempting.exempt_users.add(bob)
    block("strict")
    assert names(bob, production, version) == ["strict"]
    assert names(carol, production, version) == ["exempting", "strict"]


def test_it_returns_every_refusing_blocker_with_its_reason(
    bob: User, production: Environment, version: DeployableVersion
) -> None:
    block("A freeze", availability="production")
    block("B branch", kind=Blocker.Kind.BRANCH, config={"patterns": ["release/*"]})
    refusals = evaluate(
        user=bob, service=version.service, environment=production, version=version, now=NOW
    )
    assert refusals == [
        Refusal(
            blocker_id=refusals[0].blocker_id,
            name="A freeze",
            kind="unconditional",
            reason="Blocked by 'A freeze' (unconditional): deployments to production are blocked",
            overridable=True,
        ),
        Refusal(
            blocker_id=refusals[1].blocker_id,
            name="B branch",
            kind="branch allow-list",
            reason="Blocked by 'B branch' (branch allow-list): deployments must come from "
            "release/*; checkout@aaaaaaaaaaaa is on branch 'main'",
            overridable=True,
        ),
    ]


@pytest.mark.parametrize(
    ("kind", "config", "why"),
    [
        (
            "time_window",
            {"days": [4], "start": "12:00", "end": "13:00", "timezone": "Mars/Base"},
            "unknown time zone 'Mars/Base'",
        ),
        ("branch", {"patterns": []}, "patterns must not be empty"),
        (
            "concurrency",
            {"max_in_progress": "two"},
            "max_in_progress must be a whole number of at least 1",
        ),
        ("unconditional", ["not", "an", "object"], "the configuration must be a JSON object"),
        ("teleport", {}, "unknown blocker kind 'teleport'"),
        ("promotion", {"from_environment": "nowhere"}, "environment 'nowhere' does not exist"),
    ],
)
def test_a_blocker_it_cannot_evaluate_blocks_and_says_so(
    bob: User, production: Environment, version: DeployableVersion, kind: str, config: Any, why: str
) -> None:
    block("Broken", kind=kind, config=config)
    refusals = evaluate(
        user=bob, service=version.service, environment=production, version=version, now=NOW
    )
    assert len(refusals) == 1
    assert refusals[0].reason.startswith("Blocker 'Broken' (")
    assert refusals[0].reason.endswith(f"cannot be evaluated: {why}; it blocks until fixed")


def test_an_unexpected_error_in_a_check_also_blocks(
    bob: User, production: Environment, version: DeployableVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    block("Exploding", kind=Blocker.Kind.BRANCH, config={"patterns": ["main"]})

    def explode(*args: Any) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr("permissions.blockers._check_branch", explode)
    [refusal] = evaluate(
        user=bob, service=version.service, environment=production, version=version, now=NOW
    )
    assert refusal.reason == (
        "Blocker 'Exploding' (branch allow-list) cannot be evaluated: KeyError; "
        "it blocks until fixed"
    )


def test_a_non_overridable_blocker_says_so(
    bob: User, production: Environment, version: DeployableVersion
) -> None:
    block("Hard", overridable=False)
    [refusal] = evaluate(
        user=bob, service=version.service, environment=production, version=version, now=NOW
    )
    assert refusal.overridable is False


def test_evaluate_never_writes(
    bob: User, production: Environment, version: DeployableVersion
) -> None:
    block("freeze")
    block("ci", kind=Blocker.Kind.CI_STATUS)
    block("limit", kind=Blocker.Kind.CONCURRENCY, config={"max_in_progress": 1})
    with CaptureQueriesContext(connection) as queries:
        evaluate(
            user=bob, service=version.service, environment=production, version=version, now=NOW
        )
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries)


def test_its_query_count_does_not_grow_with_the_number_of_blockers(
    bob: User, production: Environment, version: DeployableVersion
) -> None:
    kinds: list[tuple[str, dict[str, Any]]] = [
        (Blocker.Kind.CONCURRENCY, {"max_in_progress": 5}),
        (Blocker.Kind.CI_STATUS, {}),
        (Blocker.Kind.SINGLE_REGION, {}),
        (Blocker.Kind.PROMOTION, {"from_environment": "production"}),
    ]

    def add(n: int) -> None:
        for kind, config in kinds:
            block(f"{kind}-{n}", kind=kind, config=config)

    add(0)
    with CaptureQueriesContext(connection) as few:
        evaluate(
            user=bob, service=version.service, environment=production, version=version, now=NOW
        )
    for n in range(1, 6):
        add(n)
    with CaptureQueriesContext(connection) as many:
        refusals = evaluate(
            user=bob, service=version.service, environment=production, version=version, now=NOW
        )
    assert len(refusals) == 12  # CI status and promotion refuse; the others let it through
    assert len(many) == len(few)
