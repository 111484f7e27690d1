"""Apollo's apply when the object changed between its ownership check and the apply.

On a real cluster the controllers write a Deployment's status all through a rollout, so the
resourceVersion Apollo checked is often stale by the time it applies (409 Conflict): Apollo
checks the owner again and applies. The security rule stays: an object another owner took
meanwhile is refused, never taken over. Runs on kubesim and on the real control plane."""

from typing import Any

import pytest
from kubernetes import client

from deployments.rendering import LABEL_SERVICE, MANAGED_BY
from environments import kube
from environments.models import Environment
from tests.cluster import control_plane

NAME = "ledger"


def _deployment(image: str) -> dict[str, Any]:
    labels = {"app": NAME, MANAGED_BY: "apollo", LABEL_SERVICE: NAME}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


@pytest.fixture
def apps(kubesim: control_plane.ControlPlaneHandle) -> Any:
    return client.AppsV1Api(kubesim.api_client())


def _changed_since_checked(staging: Environment, apps: Any, labels: dict[str, str]) -> str:
    """Apply, remember the checked version, then let someone else change the object."""
    kube.apply(staging.cluster, staging.namespace, [_deployment("registry.example.com/ledger:1")])
    checked = kube.owned_version(staging.cluster, staging.namespace, _deployment("x"))
    assert checked
    apps.patch_namespaced_deployment(
        NAME, staging.namespace, {"metadata": {"labels": labels}}, field_manager="someone-else"
    )
    return checked


def test_an_object_changed_since_the_check_is_checked_again_and_applied(
    staging: Environment, apps: Any
) -> None:
    checked = _changed_since_checked(staging, apps, {"touched": "yes"})
    kube.apply(
        staging.cluster,
        staging.namespace,
        [_deployment("registry.example.com/ledger:2")],
        checked={("Deployment", NAME): checked},
    )
    running = apps.read_namespaced_deployment(NAME, staging.namespace)
    assert running.spec.template.spec.containers[0].image == "registry.example.com/ledger:2"


def test_an_object_another_owner_took_since_the_check_is_refused_not_taken_over(
    staging: Environment, apps: Any
) -> None:
    checked = _changed_since_checked(staging, apps, {LABEL_SERVICE: "payments"})
    with pytest.raises(kube.NotOwned, match="belongs to another owner: service payments"):
        kube.apply(
            staging.cluster,
            staging.namespace,
            [_deployment("registry.example.com/ledger:2")],
            checked={("Deployment", NAME): checked},
        )
    running = apps.read_namespaced_deployment(NAME, staging.namespace)
    assert running.metadata.labels[LABEL_SERVICE] == "payments"
    assert running.spec.template.spec.containers[0].image == "registry.example.com/ledger:1"
