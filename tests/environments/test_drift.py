"""Drift: what the cluster runs (images, replicas) against what Apollo last applied, named.

`kubectl set image` changes the image and keeps Apollo's commit label: it must still show."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from kubernetes import client

from environments import kube
from environments.live.state import drift_of
from environments.models import Environment
from tests.environments.sockets import communicator, deployed, receive_until

APPLIED = {"images": {"web": "registry.example.com/web:" + "a" * 40}, "replicas": 2}


def _running(image: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        }
    }


def test_nothing_differs_when_the_cluster_runs_what_apollo_applied() -> None:
    running = _running(APPLIED["images"]["web"])  # type: ignore[index]
    assert drift_of(running, APPLIED, expected_replicas=None) == []


def test_another_image_is_named_with_both_images() -> None:
    running = _running("registry.example.com/web:hotfix")
    assert drift_of(running, APPLIED, expected_replicas=None) == [
        f"image of web: registry.example.com/web:hotfix runs, Apollo applied "
        f"{APPLIED['images']['web']}"  # type: ignore[index]
    ]


def test_replicas_count_against_the_group_scaling_factor_when_there_is_one() -> None:
    running = _running(APPLIED["images"]["web"], replicas=5)  # type: ignore[index]
    assert drift_of(running, APPLIED, expected_replicas=None) == [
        "replicas: 5 wanted, Apollo set 2"
    ]
    # A group scaled by Apollo to 5 (no redeploy) is not drift.
    assert drift_of(running, APPLIED, expected_replicas=5) == []


def test_a_deployment_recorded_without_documents_has_no_image_drift() -> None:
    assert drift_of(_running("x:y"), None, expected_replicas=None) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
async def test_kubectl_set_image_outside_apollo_shows_as_drift_on_the_environment_page(
    alice: User, carol: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    socket = await communicator(f"/ws/environments/{staging.name}/status/", carol)
    assert (await socket.connect(timeout=10))[0]
    first = await receive_until(socket, lambda m: "web-" in m["html"] and m["reachable"])
    assert "drifted" not in first["html"]

    def set_image() -> None:  # what `kubectl set image deployment/web web=...` sends
        apps = client.AppsV1Api(kube.api_client(staging.cluster))
        running = apps.read_namespaced_deployment("web", staging.namespace)
        name = running.spec.template.spec.containers[0].name
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": name, "image": "nginx:1.27"}]}}}
        }
        apps.patch_namespaced_deployment("web", staging.namespace, patch)

    await sync_to_async(set_image)()
    state = await receive_until(socket, lambda m: "drifted" in m["html"])
    assert "nginx:1.27 runs, Apollo applied" in state["html"]
    await socket.disconnect()
