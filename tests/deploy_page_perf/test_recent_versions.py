"""The picker's recent versions (deployments.selectors.recent_versions) are read by SQL Django
compiled once per process and limit: the same versions, in the same order, with the same
values (dates aware, as Django gives them), as the ORM's query; one query per service."""

from datetime import UTC, datetime, timedelta

import pytest

from deployments.models import DeployableVersion
from deployments.selectors import recent_versions
from tests import factories

pytestmark = pytest.mark.django_db


def _values(version: DeployableVersion) -> dict[str, object]:
    return {f.attname: getattr(version, f.attname) for f in version._meta.concrete_fields}


def test_the_versions_read_are_the_orms_in_its_order(
    django_assert_num_queries: object,
) -> None:
    checkout, billing, empty = (factories.make_service() for _ in range(3))
    committed = datetime(2026, 11, 30, 23, 59, 1, 123456, tzinfo=UTC)
    for n in range(7):
        factories.make_version(
            checkout,
            branch=f"feature/{n}",
            commit_message=f"Change {n}\n\nwith a body",
            commit_author="bob",
            committed_at=committed + timedelta(minutes=n) if n % 2 else None,
        )
    factories.make_version(billing)
    services = [billing, checkout, empty]
    with django_assert_num_queries(len(services)):  # type: ignore[operator]
        read = recent_versions(services, 5)
    assert [service for service, _ in read] == services
    for service, versions in read:
        expected = list(DeployableVersion.objects.filter(service=service)[:5])
        assert [_values(v) for v in versions] == [_values(v) for v in expected]
    assert len(read[1][1]) == 5
    assert read[1][1][0].created_at.tzinfo is not None
