"""The critical attack: mallory (no grants) asked for pod `..` on the logs, shell, restart and
Jolokia routes and the LiveTail and shell sockets. The client sent `..` to the API server,
the answer (a Namespace) broke the page, and the debug page showed `authorization: Bearer
<token>`. Now every user-supplied pod or container name is checked as Kubernetes would before
anything reaches the cluster (400, or a socket closed with the reason), and the permission is
asked before any cluster call (mallory gets 403 while the cluster is never contacted)."""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.environments.sockets import deployed
from tests.security.cluster_tripwire import Tripwire, close_of, tripwire, tripwire_environment

pytestmark = pytest.mark.django_db(transaction=True)

BAD_PODS = ["..", ".", "Checkout", "a_b", "a/b", "-a", "a" * 254, "a..b", " a"]
BAD_CONTAINERS = ["..", ".", "App", "a.b", "a" * 64]


def _client(user: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _routes(env: str, pod: str) -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("get", f"/environments/{env}/logs/", {"pod": pod}),
        ("get", f"/environments/{env}/pods/{pod}/shell/", {}),
        ("post", f"/environments/{env}/pods/{pod}/restart/", {}),
        ("get", f"/environments/{env}/pods/{pod}/jolokia/", {}),
        ("get", f"/environments/{env}/pods/{pod}/jolokia/version", {}),
    ]


@pytest.fixture
def wire() -> Iterator[Tripwire]:
    with tripwire() as wire:
        yield wire


@pytest.fixture
def production(wire: Tripwire) -> Environment:
    return tripwire_environment(wire, name="production", availability="production")


@pytest.mark.parametrize("pod", BAD_PODS)
def test_a_bad_pod_name_is_a_400_before_the_cluster_is_asked(
    alice: User, production: Environment, wire: Tripwire, pod: str
) -> None:
    client = _client(alice)
    for method, url, data in _routes(production.name, pod):
        if "/" in pod and "/pods/" in url:
            continue  # a slash ends the path segment: no route, a plain 404
        response = getattr(client, method)(url, data)
        assert response.status_code == 400, (url, response.status_code)
        assert "not a valid pod name" in response.content.decode(), url
        assert b"tripwire-token" not in response.content
    assert wire.connections == 0


@pytest.mark.parametrize("container", BAD_CONTAINERS)
def test_a_bad_container_name_is_a_400_before_the_cluster_is_asked(
    alice: User, production: Environment, wire: Tripwire, container: str
) -> None:
    client = _client(alice)
    for url, data in [
        (f"/environments/{production.name}/logs/", {"pod": "web-1", "container": container}),
        (f"/environments/{production.name}/pods/web-1/shell/", {"container": container}),
    ]:
        response = client.get(url, data)
        assert response.status_code == 400, url
        assert "not a valid container name" in response.content.decode()
    assert wire.connections == 0


@pytest.mark.parametrize("pod", ["..", "web-1"])
def test_mallory_is_refused_before_the_cluster_is_asked(
    mallory: User, production: Environment, wire: Tripwire, pod: str
) -> None:
    client = _client(mallory)
    for method, url, data in _routes(production.name, "web-1"):
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, url
    response = client.get(f"/environments/{production.name}/pods/%2e%2e/jolokia/")
    assert response.status_code in (400, 403)
    factories.make_service("web")
    response = client.post(f"/environments/{production.name}/services/web/restart/")
    assert response.status_code == 403
    assert wire.connections == 0


@pytest.mark.usefixtures("worker")
def test_dotdot_against_a_real_cluster_answers_400_without_the_token(
    alice: User, mallory: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    deployed(alice, staging, "web", replicas=1)
    for user in (alice, mallory):
        client = _client(user)
        for pod in ("..", "."):
            for method, url, data in _routes(staging.name, pod):
                response = getattr(client, method)(url, data)
                assert response.status_code in (400, 403), (user, url)
                assert kubesim.token.encode() not in response.content


@pytest.mark.parametrize("pod", ["..", ".", "Web"])
async def test_the_sockets_close_with_a_reason_on_a_bad_pod_name(
    alice: User, production: Environment, wire: Tripwire, pod: str
) -> None:
    shell = await close_of(f"/ws/environments/{production.name}/pods/{pod}/shell/", alice)
    tail = await close_of(f"/ws/environments/{production.name}/logs/?pod={pod}", alice)
    for message in (shell, tail):
        assert message["type"] == "websocket.close"
        assert message["code"] == 4400
        assert "not a valid pod name" in str(message.get("reason"))
    assert wire.connections == 0


async def test_the_sockets_close_with_a_reason_on_a_bad_container_name(
    alice: User, production: Environment, wire: Tripwire
) -> None:
    env = production.name
    for path in (
        f"/ws/environments/{env}/pods/web-1/shell/?container=..",
        f"/ws/environments/{env}/logs/?pod=web-1&container=App",
        f"/ws/environments/{env}/logs/?service=web&container=a.b",
    ):
        message = await close_of(path, alice)
        assert message["code"] == 4400, path
        assert "not a valid container name" in str(message.get("reason"))
    assert wire.connections == 0


async def test_mallorys_sockets_are_refused_before_the_cluster_is_asked(
    mallory: User, production: Environment, wire: Tripwire
) -> None:
    env = production.name
    for path in (
        f"/ws/environments/{env}/pods/web-1/shell/",
        f"/ws/environments/{env}/logs/?pod=web-1",
    ):
        message = await close_of(path, mallory)
        assert (message["type"], message["code"]) == ("websocket.close", 4403), path
    assert wire.connections == 0
