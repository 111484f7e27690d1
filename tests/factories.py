"""Builders for test data: real rows through the ORM, with sensible defaults."""

import itertools
import secrets
from typing import Any

from django.contrib.auth.models import User

from deployments.models import DeployableVersion, Deployment, Service
from environments.models import Cluster, Environment

PASSWORD = "correct-horse-battery-staple"  # every persona's test password
_counter = itertools.count(1)

DEPLOYMENT_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{service}}
spec:
  replicas: {{replicas}}
  selector:
    matchLabels: {app: {{service}}}
  template:
    metadata:
      labels: {app: {{service}}}
    spec:
      containers:
        - name: app
          image: {{image}}
"""


def make_user(username: str, **extra: Any) -> User:
    return User.objects.create_user(username=username, password=PASSWORD, **extra)


def make_cluster(name: str | None = None) -> Cluster:
    return Cluster.objects.create(name=name or f"cluster-{next(_counter)}")


def make_environment(
    name: str | None = None, *, cluster: Cluster | None = None, **extra: Any
) -> Environment:
    n = next(_counter)
    return Environment.objects.create(
        name=name or f"env-{n}",
        cluster=cluster or make_cluster(),
        namespace=extra.pop("namespace", name or f"ns-{n}"),
        availability=extra.pop("availability", "staging"),
        **extra,
    )


def make_service(name: str | None = None, **extra: Any) -> Service:
    name = name or f"svc-{next(_counter)}"
    extra.setdefault("image_repository", f"registry.example.com/{name}")
    extra.setdefault("deployment_template", DEPLOYMENT_TEMPLATE)
    return Service.objects.create(name=name, **extra)


def make_version(service: Service, sha: str | None = None, **extra: Any) -> DeployableVersion:
    return DeployableVersion.objects.create(
        service=service, git_commit_sha=sha or secrets.token_hex(20), **extra
    )


def make_deployment(
    *,
    service: Service,
    environment: Environment,
    deployed_by: User,
    version: DeployableVersion | None = None,
    **extra: Any,
) -> Deployment:
    # DONE by default: only one deployment per target may be in progress at a time.
    extra.setdefault("status", "DONE")
    return Deployment.objects.create(
        service=service,
        environment=environment,
        version=version or make_version(service),
        deployed_by=deployed_by,
        **extra,
    )


def make_rollout(user: User, *, status: str) -> Deployment:
    """One deployment by `user`, of a new service to a new environment (the only one in
    progress there, whatever its status)."""
    return make_deployment(
        service=make_service(), environment=make_environment(), deployed_by=user, status=status
    )


def make_started_deployments(user: User, count: int) -> list[Deployment]:
    """`count` deployments STARTED by `user`, each of a service of its own, in one new
    environment (rollouts a worker would be following side by side)."""
    environment = make_environment()
    return [
        make_deployment(
            service=make_service(),
            environment=environment,
            deployed_by=user,
            status="STARTED",
        )
        for _ in range(count)
    ]


def token_for(user: User, name: str = "test") -> str:
    """Issue an API token for user and return its key (the only time it is available)."""
    from permissions.tokens import issue_token

    return issue_token(actor=None, user=user, name=name)[1]
