"""A pod created by hand with the label `apollo.io/service: checkout` was taken for checkout's:
checkout's log, exec and restart holders acted on it (and those refused on checkout were
refused on it), and it was listed among checkout's pods on the environment page. A pod now
belongs to a service only through its owner chain (Pod -> ReplicaSet -> a Deployment that
Apollo applied); a hand-made pod belongs to no service, so only environment-wide grants
decide about it."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client
from kubernetes import client

from deployments.models import Service
from environments import kube
from environments.models import Environment
from kubesim.testing import KubesimHandle
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login
from tests.environments.sockets import communicator, connect_code, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

FAKE = "fake-checkout"
ACTIONS = [Verb.VIEW, Verb.VIEW_LOGS, Verb.EXEC, Verb.RESTART]


def _make_fake_pod(kubesim: KubesimHandle, namespace: str, service: Service) -> None:
    api = kubesim.api_client()
    try:
        client.CoreV1Api(api).create_namespaced_pod(
            namespace,
            {
                "metadata": {
                    "name": FAKE,
                    "labels": {
                        "apollo.io/service": "checkout",
                        "app.kubernetes.io/managed-by": "apollo",
                        "apollo.io/commit-sha": "0" * 40,
                    },
                },
                "spec": {"containers": [{"name": "app", "image": f"{service.image_repository}:x"}]},
            },
        )
    finally:
        api.close()


def _real_pod(environment: Environment) -> str:
    items, _ = kube.list_objects(
        environment.cluster,
        "Pod",
        environment.namespace,
        label_selector="apollo.io/service=checkout",
    )
    names = [i["metadata"]["name"] for i in items if i["metadata"]["name"] != FAKE]
    return str(names[0])


@pytest.fixture
def checkout(alice: User, staging: Environment, kubesim: KubesimHandle) -> Service:
    service = deployed(alice, staging, "checkout", replicas=1)
    _make_fake_pod(kubesim, staging.namespace, service)
    return service


@pytest.fixture
def dave(checkout: Service) -> User:
    """Holds every pod verb on checkout only."""
    user = factories.make_user("dave")
    grant(actor=None, user=user, verbs=ACTIONS, service=checkout)
    return user


@pytest.fixture
def erin(checkout: Service, staging: Environment) -> User:
    """May act on everything in staging except checkout (a DENY on the pair)."""
    user = factories.make_user("erin")
    grant(actor=None, user=user, verbs=ACTIONS, environment=staging)
    grant(
        actor=None,
        user=user,
        verbs=ACTIONS[1:],
        effect=Effect.DENY,
        service=checkout,
        environment=staging,
    )
    return user


def _pages(client_: Client, environment: Environment, pod: str) -> dict[str, int]:
    base = f"/environments/{environment.name}"
    return {
        "logs": client_.get(f"{base}/logs/", {"pod": pod}).status_code,
        "shell": client_.get(f"{base}/pods/{pod}/shell/").status_code,
        "jolokia": client_.get(f"{base}/pods/{pod}/jolokia/version").status_code,
    }


def test_checkouts_holders_get_no_rights_on_the_hand_made_pod(
    dave: User, staging: Environment
) -> None:
    refused = {"logs": 403, "shell": 403, "jolokia": 403}
    assert _pages(login(dave), staging, FAKE) == refused
    response = login(dave).post(f"/environments/{staging.name}/pods/{FAKE}/restart/")
    assert response.status_code == 403
    assert kube.read_pod(staging.cluster, staging.namespace, FAKE) is not None
    # The real pod of checkout: dave's grant applies (no Jolokia port declared: 404).
    assert _pages(login(dave), staging, _real_pod(staging)) == {
        "logs": 200,
        "shell": 200,
        "jolokia": 404,
    }


def test_those_refused_on_checkout_are_not_refused_on_the_hand_made_pod(
    erin: User, staging: Environment
) -> None:
    assert _pages(login(erin), staging, _real_pod(staging))["logs"] == 403
    assert _pages(login(erin), staging, FAKE)["logs"] == 200


async def test_the_shell_and_log_sockets_refuse_checkouts_holders_on_it(
    dave: User, staging: Environment
) -> None:
    env = staging.name
    assert await connect_code(f"/ws/environments/{env}/pods/{FAKE}/shell/", dave) == (False, 4403)
    assert await connect_code(f"/ws/environments/{env}/logs/?pod={FAKE}", dave) == (False, 4403)


async def test_the_environment_page_does_not_list_it_as_checkouts_pod(
    alice: User, staging: Environment, checkout: Service
) -> None:
    socket = await communicator(f"/ws/environments/{staging.name}/status/", alice)
    assert (await socket.connect(timeout=10))[0]

    def shows_checkouts_pod(message: dict[str, Any]) -> bool:
        return bool(message.get("reachable")) and "checkout-" in message["html"]

    state = await receive_until(socket, shows_checkouts_pod)
    assert FAKE not in state["html"]
    await socket.disconnect()


async def test_a_checkout_tail_does_not_follow_the_hand_made_pod(
    dave: User, staging: Environment
) -> None:
    socket = await communicator(f"/ws/environments/{staging.name}/logs/?service=checkout", dave)
    assert (await socket.connect(timeout=10))[0]
    real = await sync_to_async(_real_pod)(staging)

    def lines_of_the_real_pod(message: dict[str, Any]) -> bool:
        return any(line[0] == real for line in message.get("lines", []))

    seen: set[str] = set()
    for _ in range(5):  # several batches of the real pod's lines: the fake one writes as fast
        message = await receive_until(socket, lines_of_the_real_pod)
        seen |= {line[0] for line in message["lines"]}
    assert real in seen
    assert FAKE not in seen
    await socket.disconnect()
