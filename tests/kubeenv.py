"""Apollo in front of kubesim: fixtures (a Cluster, a staging environment, a running worker)
and helpers to deploy and wait. Loaded as a pytest plugin by tests/conftest.py."""

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User

from deployments.engine import worker as worker_module
from deployments.models import DeployableVersion, Deployment, Service
from deployments.services.deploy import DeployOutcome, request_deployment
from deployments.status import Status
from environments.models import Cluster, Environment
from kubesim.testing import KubesimHandle
from tests import factories

SERVICE_TEMPLATE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{service}}
spec:
  type: NodePort
  selector: {app: {{service}}}
  ports:
    - port: 80
      nodePort: {{node_port}}
"""


def kubesim_cluster(kubesim: KubesimHandle, name: str = "kubesim") -> Cluster:
    """A cluster of the token kind: exercises the encrypted token and the CA path."""
    cluster = Cluster(
        name=name,
        connection=Cluster.Connection.TOKEN,
        api_url=kubesim.url,
        ca_certificate=kubesim.ca_cert_pem,
    )
    cluster.set_token(kubesim.token)
    cluster.save()
    return cluster


@pytest.fixture
def staging(kubesim: KubesimHandle, kubesim_namespace: str, transactional_db: None) -> Environment:
    return factories.make_environment(
        "staging",
        cluster=kubesim_cluster(kubesim),
        namespace=kubesim_namespace,
        availability="staging",
        rollout_timeout_seconds=30,
    )


@pytest.fixture
def worker(transactional_db: None) -> Iterator[threading.Event]:
    """The real worker loop in a thread, stopped after the test."""
    shutdown = threading.Event()
    thread = threading.Thread(
        target=worker_module.run_worker,
        kwargs={"shutdown": shutdown, "poll_interval": 0.1, "owner": "test-worker"},
        daemon=True,
    )
    thread.start()
    yield shutdown
    shutdown.set()
    thread.join(timeout=30)


def deploy(
    user: User,
    service: Service,
    environment: Environment,
    version: DeployableVersion,
    *,
    message: str = "",
) -> DeployOutcome:
    return request_deployment(
        user=user, service=service, environment=environment, version=version, message=message
    )


def wait_for(
    deployment: Deployment, check: Callable[[Deployment], bool], timeout: float = 30
) -> Deployment:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.refresh_from_db()
        if check(deployment):
            return deployment
        time.sleep(0.1)
    raise AssertionError(
        f"deployment {deployment.pk} still {deployment.status} ({deployment.status_reason}); "
        f"timeline: {deployment.timeline[-5:]}"
    )


def wait_until_terminal(deployment: Deployment, timeout: float = 30) -> Deployment:
    return wait_for(deployment, lambda d: Status(d.status).is_terminal, timeout)
