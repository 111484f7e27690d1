"""Redis only carries live updates (issue #17, point 2): a Redis server this test starts itself is
the channel layer (and the API throttles' cache), and it is stopped mid-rollout, during POSTs
and during a cancel. Deployments still end DONE, the POSTs answer 201, the cancel rolls back;
once Redis is back, pages get live updates again. (Before ops.publish, the worker's first
publish raised ConnectionError and the deployment ended FAILED "internal error in the worker",
and the cancel answered 500; before ops.fallback_cache, every API request answered 500 while
the throttles' Redis was down.)"""

import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client
from kubernetes import client

from apollo_site.ops import publish
from apollo_site.settings import redis_channel_layer, redis_throttles_cache
from deployments.models import DeployableVersion, Deployment, Service
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.environments.sockets import communicator, receive_until
from tests.kubeenv import wait_for, wait_until_terminal

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server process of this test's own, stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        probe = redis.Redis.from_url(self.url, socket_timeout=1)
        while True:
            try:
                probe.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not answer within 30 s"
                time.sleep(0.05)
        probe.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def redis_server(settings: Any) -> Iterator[RedisServer]:
    """The channel layer on a Redis of the test's own (it stops it: never the shared one)."""
    server = RedisServer()
    server.start()
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(server.url, prefix=prefix)}
    # The API throttles count in the same Redis, as in production.
    settings.CACHES = {
        **settings.CACHES,
        "throttles": redis_throttles_cache(server.url, prefix=prefix),
    }
    publish.breaker.reset()
    yield server
    server.stop()
    publish.breaker.reset()


def _api(user: User) -> Client:
    return Client(headers={"Authorization": f"Token {factories.token_for(user)}"})


def _post_deployment(api: Client, service: Service, environment: Environment) -> Deployment:
    version = DeployableVersion.objects.filter(service=service).latest("pk")
    body = {
        "service": service.name,
        "environment": environment.name,
        "git_commit_sha": version.git_commit_sha,
    }
    response = api.post("/api/v1/deployments/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    return Deployment.objects.get(pk=response.json()["id"])


def _service(
    kubesim: KubesimHandle, name: str, behaviour: str = "ok", seconds: float = 0
) -> Service:
    service = factories.make_service(name, default_variables={"replicas": 2})
    version = factories.make_version(service)
    if behaviour != "ok":
        kubesim.register_image(version.image, behaviour, seconds=seconds)
    return service


def _running_image(kubesim: KubesimHandle, name: str, namespace: str) -> str:
    api = kubesim.api_client()
    try:
        running = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
        return str(running.spec.template.spec.containers[0].image)
    finally:
        api.close()


def test_deployments_end_done_and_posts_answer_201_while_redis_is_down(
    bob: User, staging: Environment, kubesim: KubesimHandle, redis_server: RedisServer
) -> None:
    api = _api(bob)
    slow = _service(kubesim, "slow", "slow", seconds=6)
    rolling = _post_deployment(api, slow, staging)
    wait_for(rolling, lambda d: d.applied_at is not None)
    redis_server.stop()  # mid-rollout: its pods take 6 s to become ready
    assert not Status(Deployment.objects.get(pk=rolling.pk).status).is_terminal
    posted = [_post_deployment(api, _service(kubesim, f"during-{n}"), staging) for n in range(3)]
    for deployment in [rolling, *posted]:
        deployment = wait_until_terminal(deployment, timeout=60)
        assert deployment.status == Status.DONE, (deployment.status_reason, deployment.timeline)
        assert "rollout complete" in deployment.status_reason
        assert _running_image(kubesim, deployment.service.name, staging.namespace) == (
            deployment.version.image
        )


def test_a_cancel_while_redis_is_down_answers_200_and_rolls_back(
    bob: User, staging: Environment, kubesim: KubesimHandle, redis_server: RedisServer
) -> None:
    api = _api(bob)
    service = _service(kubesim, "api")
    first = wait_until_terminal(_post_deployment(api, service, staging))
    assert first.status == Status.DONE, first.status_reason
    stuck = factories.make_version(service)
    kubesim.register_image(stuck.image, "notready")
    second = _post_deployment(api, service, staging)
    wait_for(second, lambda d: d.applied_at is not None)
    redis_server.stop()
    response = api.post(f"/api/v1/deployments/{second.pk}/cancel/")
    assert response.status_code == 200, response.content
    second = wait_until_terminal(second, timeout=60)
    assert second.status == Status.CANCELED, (second.status_reason, second.timeline)
    assert _running_image(kubesim, "api", staging.namespace) == first.version.image


def _publishes_again(timeout: float = 30) -> bool:
    """The publisher pauses after a failure; it tries again (and succeeds) once Redis is back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if publish.publish("outage.probe", {"type": "outage.probe"}):
            return True
        time.sleep(0.2)
    return False


async def test_pages_get_live_updates_again_once_redis_is_back(
    alice: User, staging: Environment, kubesim: KubesimHandle, redis_server: RedisServer
) -> None:
    api = await sync_to_async(_api)(alice)
    service = await sync_to_async(_service)(kubesim, "back")
    redis_server.stop()
    during = await sync_to_async(_post_deployment)(api, service, staging)
    during = await sync_to_async(wait_until_terminal)(during)
    assert during.status == Status.DONE, during.status_reason

    redis_server.start()
    assert await sync_to_async(_publishes_again)()
    stuck = await sync_to_async(factories.make_version)(service)
    await sync_to_async(kubesim.register_image)(stuck.image, "notready")
    after = await sync_to_async(_post_deployment)(api, service, staging)
    await sync_to_async(wait_for)(after, lambda d: d.applied_at is not None)
    # The page (re)connects: it reads the deployment from the database first ...
    page = await communicator(f"/ws/deployments/{after.pk}/", alice)
    assert (await page.connect(timeout=30))[0]
    first = await receive_until(page, lambda m: m["type"] == "deployment.status")
    assert (first["id"], first["status"]) == (after.pk, Status.STARTED)
    # ... then follows what the web process and the worker publish through Redis.
    response = await sync_to_async(api.post)(f"/api/v1/deployments/{after.pk}/cancel/")
    assert response.status_code == 200, response.content
    await receive_until(page, lambda m: m.get("status") == Status.PENDING_CANCELLATION)
    await receive_until(page, lambda m: m.get("status") == Status.CANCELED, timeout=60)
    await page.disconnect()
