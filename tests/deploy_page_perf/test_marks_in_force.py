"""The marks in force that the Deploy page's picker shows (deployments.selectors.marks_in_force)
are read by SQL Django compiled once per process and shape: the same marks, in the same order,
with the same names and dates, as the ORM's query of the rule (an active mark on one of the
services, environments and shas), for any number of each."""

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.models import BadVersion, DeployableVersion, Service
from deployments.selectors import marks_in_force
from environments.models import Environment
from tests import factories

pytestmark = pytest.mark.django_db


def _mark(
    version: DeployableVersion, environment: Environment, by: User | None, **extra: object
) -> BadVersion:
    return BadVersion.objects.create(
        service=version.service,
        environment=environment,
        sha=version.git_commit_sha,
        reason=f"broke {environment.name}",
        marked_by=by,
        **extra,
    )


def _shown(marks: list[BadVersion]) -> list[tuple[object, ...]]:
    return [
        (m.pk, m.service_id, m.sha, m.environment.name, m.marked_by_name, m.reason, m.marked_at)
        for m in marks
    ]


def test_the_marks_read_are_the_ones_the_orm_reads(bob: User) -> None:
    staging, production, other = (
        factories.make_environment(name) for name in ("staging", "production", "other")
    )
    checkout, billing = factories.make_service("checkout"), factories.make_service("billing")
    versions = [factories.make_version(s) for s in (checkout, checkout, billing)]
    _mark(versions[0], staging, bob)
    _mark(versions[0], production, None)  # Apollo marked it (an automatic revert)
    _mark(versions[1], staging, bob, unmarked_at=timezone.now(), unmark_reason="fixed")
    _mark(versions[2], staging, None)
    _mark(versions[2], other, bob)  # an environment not asked for
    for services, environments, shas in (
        ([checkout], [staging], [versions[0].git_commit_sha]),
        ([checkout, billing], [staging, production], [v.git_commit_sha for v in versions]),
        ([billing, checkout], [production, staging, staging], [versions[0].git_commit_sha] * 2),
    ):
        expected = (
            BadVersion.objects.active()
            .filter(service__in=services, environment__in=environments, sha__in=shas)
            .select_related("marked_by", "environment")
            .order_by("environment__name")
        )
        read = marks_in_force(services=services, environments=environments, shas=shas)
        # Marks in one environment come in no particular order, in either query.
        assert sorted(_shown(read), key=str) == sorted(_shown(list(expected)), key=str)
        names = [m.environment.name for m in read]
        assert names == sorted(names)
        assert read, "each case finds a mark"


def test_nothing_to_look_for_asks_no_query(django_assert_num_queries: object) -> None:
    service: Service = factories.make_service()
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert marks_in_force(services=[service], environments=[], shas=["a" * 40]) == []
