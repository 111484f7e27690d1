"""A hand-made history whose metrics tests/metrics work out by hand (see test_compute)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.contrib.auth.models import User

from deployments.models import DeployableVersion, Deployment, Service
from environments.models import Environment
from history.metrics.compute import Period
from tests import factories

PERIOD = Period(date(2026, 3, 1), date(2026, 3, 10))


def at(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@dataclass
class Story:
    service: Service
    staging: Environment
    production: Environment
    versions: dict[str, DeployableVersion]
    deployments: dict[str, Deployment]


def make_story(user: User) -> Story:
    service = factories.make_service("checkout")
    staging = factories.make_environment("staging", availability="staging")
    production = factories.make_environment("production", availability="production")
    v = {
        "v1": factories.make_version(service, committed_at=at(1, 8)),
        "v2": factories.make_version(service, committed_at=at(2, 9)),
        "v3": factories.make_version(service, committed_at=at(3, 0)),
        "v4": factories.make_version(service, committed_at=at(5, 12)),
        "v5": factories.make_version(service),  # no commit time: no lead time
        "vp": factories.make_version(service, committed_at=at(4, 11)),
    }

    def deploy(
        version: str,
        status: str,
        finished: datetime,
        source: str | None = None,
        environment: Environment = staging,
        started: bool = True,
    ) -> Deployment:
        return factories.make_deployment(
            service=service,
            environment=environment,
            deployed_by=user,
            version=v[version],
            source_version=v[source] if source else None,
            status=status,
            started_at=finished if started else None,
            finished_at=finished,
        )

    d = {
        "d10": deploy("v1", "DONE", at(28, 12, month=2)),  # before the period
        "d1": deploy("v1", "DONE", at(1, 10)),
        "d2": deploy("v2", "DONE", at(2, 21), "v1"),
        "d3": deploy("v3", "FAILED", at(3, 6), "v2"),
        "d4": deploy("v3", "DONE", at(3, 8), "v2"),
        "d5": deploy("v4", "DONE", at(6, 12), "v3"),
        "d6": deploy("v3", "DONE", at(6, 14), "v4"),  # the revert of d5
        "d7": deploy("v5", "CANCELED", at(7, 9), "v3", started=False),
        "d8": deploy("v5", "CANCELED", at(8, 10), "v3"),
        "d9": deploy("v5", "DONE", at(9, 10), "v3"),
        "d12": deploy("v4", "FAILED", at(10, 20), "v5"),
        "d11": deploy("vp", "DONE", at(4, 12), environment=production),
    }
    return Story(service, staging, production, v, d)
