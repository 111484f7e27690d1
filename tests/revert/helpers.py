"""What the tests of rollbacks that stick share: a staging environment without a cluster (requests
only render and store manifests), a service with two versions, the first one DONE, the second one
finished (DONE or FAILED) after it, as the worker would leave them."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from deployments.models import DeployableVersion, Deployment, Service
from deployments.notifications.models import Subscription
from deployments.notifications.services import save_subscription
from deployments.status import Status
from environments.models import Environment
from tests import factories


@dataclass
class Scene:
    service: Service
    environment: Environment
    good: DeployableVersion
    bad: DeployableVersion
    first: Deployment  # DONE, good
    second: Deployment  # finished, bad, source_version good


def scene(
    user: User, *, status: str = "DONE", environment: Environment | None = None, **env: Any
) -> Scene:
    env.setdefault("availability", "staging")
    environment = environment or factories.make_environment(**env)
    service = factories.make_service()
    good, bad = factories.make_version(service), factories.make_version(service)
    first = factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=user,
        version=good,
        finished_at=timezone.now(),
    )
    second = factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=user,
        version=bad,
        source_version=good,
        status=status,
        finished_at=timezone.now(),
    )
    return Scene(service, environment, good, bad, first, second)


def started(user: User, s: Scene, version: DeployableVersion, **extra: Any) -> Deployment:
    """A STARTED deployment of `version`, whose rollout then ends as the caller says."""
    deployment = factories.make_deployment(
        service=s.service,
        environment=s.environment,
        deployed_by=user,
        version=version,
        source_version=s.good,
        status=Status.PENDING,
        **extra,
    )
    deployment.transition_to(Status.STARTED)
    return deployment


SECRET = "s" * 40


def subscribe(alice: User, settings: Any, events: list[str]) -> Subscription:
    """A webhook subscription to everything (the outbox rows are what the tests read)."""
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    subscription = Subscription(name="hook", kind=Subscription.Kind.WEBHOOK, events=events)
    return save_subscription(
        actor=alice, subscription=subscription, url="https://127.0.0.1:9/hook", secret=SECRET
    )
