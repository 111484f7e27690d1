"""A kubesim of this folder's own: its outages, latency and faults reach no other test."""

import re
import time
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User

from deployments.models import DeployableVersion, Service
from environments.models import Environment
from kubesim.testing import ControlError, KubesimHandle, run_kubesim
from tests import factories
from tests.kubeenv import kubesim_cluster


@pytest.fixture(scope="module")
def private_kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimHandle]:
    with run_kubesim(tmp_dir=tmp_path_factory.mktemp("private-kubesim")) as handle:
        yield handle


@pytest.fixture
def sim(private_kubesim: KubesimHandle) -> Iterator[KubesimHandle]:
    """The private kubesim, listening and fault-free again after the test."""
    yield private_kubesim
    deadline = time.monotonic() + 30
    while True:
        try:
            private_kubesim.reset()
            return
        except (OSError, ControlError):  # still down after an outage of the test
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def namespace(private_kubesim: KubesimHandle, request: pytest.FixtureRequest) -> Iterator[str]:
    from kubernetes import client

    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    api = private_kubesim.api_client()
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
        yield name
    finally:
        api.close()


@pytest.fixture
def env(private_kubesim: KubesimHandle, namespace: str, transactional_db: None) -> Environment:
    """bob's staging environment on the private kubesim."""
    return factories.make_environment(
        "staging",
        cluster=kubesim_cluster(private_kubesim, name="private"),
        namespace=namespace,
        availability="staging",
        rollout_timeout_seconds=60,
    )


def target(
    sim: KubesimHandle, name: str, behaviour: str = "ok", seconds: float = 0
) -> tuple[Service, DeployableVersion]:
    service = factories.make_service(name, default_variables={"replicas": 2})
    version = factories.make_version(service)
    if behaviour != "ok":
        sim.register_image(version.image, behaviour, seconds=seconds)
    return service, version


@pytest.fixture
def deployer(bob: User) -> User:
    return bob
