"""Each blocker kind other than time windows: when it refuses, when it lets through, why."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.models import CIStatus, DeployableVersion, Service
from deployments.status import Status
from environments.models import Environment
from permissions.blockers import evaluate
from permissions.models import Blocker
from tests import factories

pytestmark = pytest.mark.django_db
NOW = datetime(2025, 6, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def prod_eu() -> Environment:
    return factories.make_environment("prod-eu", availability="production")


@pytest.fixture
def prod_us() -> Environment:
    return factories.make_environment("prod-us", availability="production")


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging-1", availability="staging")


@pytest.fixture
def version(checkout: Service) -> DeployableVersion:
    return factories.make_version(checkout, sha="b" * 40, branch="feature/login")


def block(kind: str, config: dict[str, Any], **fields: Any) -> Blocker:
    return Blocker.objects.create(name=f"the {kind}", kind=kind, config=config, **fields)


def reasons(user: User, environment: Environment, version: DeployableVersion) -> list[str]:
    refusals = evaluate(
        user=user, service=version.service, environment=environment, version=version, now=NOW
    )
    return [r.reason.split(": ", 1)[1] for r in refusals]


def running(
    service: Service, environment: Environment, user: User, status: Status = Status.STARTED
) -> None:
    factories.make_deployment(
        service=service, environment=environment, deployed_by=user, status=status
    )


# -- unconditional --------------------------------------------------------------------------


def test_unconditional_blocks_everything_in_scope_but_its_exceptions(
    bob: User, checkout: Service, prod_eu: Environment, prod_us: Environment
) -> None:
    block("unconditional", {"except_services": ["billing"], "except_environments": ["prod-us"]})
    billing = factories.make_service("billing")
    assert reasons(bob, prod_eu, factories.make_version(checkout)) == ["deployments are blocked"]
    assert reasons(bob, prod_eu, factories.make_version(billing)) == []
    assert reasons(bob, prod_us, factories.make_version(checkout)) == []


# -- branch allow-list ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("branch", "refused"),
    [
        ("main", False),
        ("release/2025-06", False),
        ("feature/login", True),
        ("", True),
        ("Main", True),
    ],
)
def test_the_branch_must_match_a_pattern(
    bob: User, checkout: Service, prod_eu: Environment, branch: str, refused: bool
) -> None:
    block("branch", {"patterns": ["main", "release/*"]}, availability="production")
    version = factories.make_version(checkout, branch=branch)
    assert bool(reasons(bob, prod_eu, version)) is refused


def test_the_branch_reason_names_the_patterns_and_the_branch(
    bob: User, prod_eu: Environment, version: DeployableVersion
) -> None:
    block("branch", {"patterns": ["main", "release/*"]}, availability="production")
    assert reasons(bob, prod_eu, version) == [
        "deployments to production must come from main or release/*; "
        "checkout@bbbbbbbbbbbb is on branch 'feature/login'"
    ]


# -- concurrency ----------------------------------------------------------------------------


def test_concurrency_refuses_at_the_limit_of_deployments_in_progress_in_the_environment(
    alice: User, bob: User, prod_eu: Environment, prod_us: Environment, version: DeployableVersion
) -> None:
    block("concurrency", {"max_in_progress": 2, "except_services": ["cron"]})
    running(factories.make_service("billing"), prod_eu, alice)
    running(factories.make_service("cron"), prod_eu, alice)  # excluded
    running(factories.make_service("search"), prod_us, alice)  # another environment
    running(factories.make_service("done"), prod_eu, alice, Status.DONE)  # finished
    assert reasons(bob, prod_eu, version) == []
    running(factories.make_service("auth"), prod_eu, alice, Status.PENDING)
    assert reasons(bob, prod_eu, version) == [
        "at most 2 deployments may be in progress in prod-eu and 2 are (auth, billing)"
    ]


# -- CI status ------------------------------------------------------------------------------


def ci(version: DeployableVersion, context: str, state: str) -> None:
    CIStatus.objects.create(version=version, context=context, state=state)


def test_ci_status_refuses_a_version_without_any_status(
    bob: User, prod_eu: Environment, version: DeployableVersion
) -> None:
    block("ci_status", {})
    assert reasons(bob, prod_eu, version) == [
        "checkout@bbbbbbbbbbbb has no CI status; CI must report a passing one first"
    ]


@pytest.mark.parametrize(
    ("statuses", "problem"),
    [
        ({"unit": "success"}, None),
        ({"unit": "success", "e2e": "success"}, None),
        ({"unit": "success", "e2e": "failure"}, "e2e is failure"),
        ({"unit": "pending"}, "unit is pending"),
        ({"unit": "error"}, "unit is error"),
    ],
)
def test_ci_status_without_contexts_wants_every_reported_status_passing(
    bob: User,
    prod_eu: Environment,
    version: DeployableVersion,
    statuses: dict[str, str],
    problem: str | None,
) -> None:
    block("ci_status", {})
    for context, state in statuses.items():
        ci(version, context, state)
    expected = [] if problem is None else [f"checkout@bbbbbbbbbbbb needs passing CI: {problem}"]
    assert reasons(bob, prod_eu, version) == expected


def test_ci_status_with_contexts_wants_those_contexts_passing_and_ignores_others(
    bob: User, prod_eu: Environment, version: DeployableVersion
) -> None:
    block("ci_status", {"required_contexts": ["jenkins/unit", "jenkins/e2e"]})
    ci(version, "jenkins/unit", "success")
    ci(version, "lint", "failure")
    assert reasons(bob, prod_eu, version) == [
        "checkout@bbbbbbbbbbbb needs passing CI: jenkins/e2e has not reported"
    ]
    ci(version, "jenkins/e2e", "success")
    assert reasons(bob, prod_eu, version) == []


# -- single region --------------------------------------------------------------------------


def test_single_region_refuses_while_the_service_is_in_progress_in_a_sibling_environment(
    alice: User,
    bob: User,
    checkout: Service,
    prod_eu: Environment,
    prod_us: Environment,
    staging: Environment,
    version: DeployableVersion,
) -> None:
    block("single_region", {}, availability="production")
    running(checkout, staging, alice)  # another availability does not count
    running(factories.make_service("billing"), prod_us, alice)  # another service neither
    running(checkout, prod_eu, alice)  # the same environment neither
    assert reasons(bob, prod_eu, version) == []
    running(checkout, prod_us, alice, Status.CANCELING)
    assert reasons(bob, prod_eu, version) == [
        "checkout is already being deployed in prod-us (production); "
        "one environment of an availability at a time"
    ]


# -- promotion ------------------------------------------------------------------------------


def succeeded(
    version: DeployableVersion, environment: Environment, user: User, ago: timedelta
) -> None:
    factories.make_deployment(
        service=version.service,
        environment=environment,
        deployed_by=user,
        version=version,
        status=Status.DONE,
        finished_at=NOW - ago,
    )


def test_promotion_wants_the_version_done_in_the_source_environment_first(
    alice: User, bob: User, prod_eu: Environment, staging: Environment, version: DeployableVersion
) -> None:
    block("promotion", {"from_environment": "staging-1"}, availability="production")
    assert reasons(bob, prod_eu, version) == [
        "checkout@bbbbbbbbbbbb must first succeed in staging-1"
    ]
    factories.make_deployment(
        service=version.service,
        environment=staging,
        deployed_by=alice,
        version=version,
        status=Status.FAILED,
    )
    other = factories.make_version(version.service)
    succeeded(other, staging, alice, timedelta(hours=1))  # another version does not count
    assert len(reasons(bob, prod_eu, version)) == 1
    succeeded(version, staging, alice, timedelta(seconds=1))
    assert reasons(bob, prod_eu, version) == []


def test_promotion_can_want_the_success_to_be_old_enough(
    alice: User, bob: User, prod_eu: Environment, staging: Environment, version: DeployableVersion
) -> None:
    block("promotion", {"from_environment": "staging-1", "min_minutes": 30})
    succeeded(version, staging, alice, timedelta(minutes=12))
    assert reasons(bob, prod_eu, version) == [
        "checkout@bbbbbbbbbbbb must have succeeded in staging-1 at least 30 minutes ago; "
        "it did 12 minutes ago"
    ]
    succeeded(version, staging, alice, timedelta(minutes=30))
    assert reasons(bob, prod_eu, version) == []
