"""What only the real control plane (cluster/) can show: upstream validation, the upstream
controllers' and scheduler's work on the simulated nodes, and kubectl built from the same pins.

Runs with APOLLO_TEST_CLUSTER=kubernetes (cluster/ci.sh); skipped on kubesim."""

import subprocess

import pytest
from django.contrib.auth.models import User
from kubernetes import client

from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.cluster import control_plane
from tests.kubeenv import SERVICE_TEMPLATE, deploy, wait_until_terminal

pytestmark = [
    pytest.mark.skipif(
        control_plane.selected() != "kubernetes", reason="needs APOLLO_TEST_CLUSTER=kubernetes"
    ),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
]

KUBECTL = control_plane.BINARY.parent / "kubectl"


def test_kubectl_built_from_the_same_pins_shows_the_real_server_version(
    kubesim: control_plane.ControlPlaneHandle,
) -> None:
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubesim.kubeconfig_path), "version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Client Version: v1.37.2" in result.stdout
    assert "Server Version: v1.37.2" in result.stdout


def test_bobs_deploy_of_checkout_ends_done_with_the_shas_image_on_ready_pods(
    bob: User, staging: Environment, kubesim: control_plane.ControlPlaneHandle
) -> None:
    service = factories.make_service(
        "checkout",
        service_template=SERVICE_TEMPLATE,
        default_variables={"node_port": 30480, "replicas": 2},
    )
    version = factories.make_version(service)
    deployment = wait_until_terminal(deploy(bob, service, staging, version).deployment)  # type: ignore[arg-type]
    assert deployment.status == Status.DONE, deployment.status_reason
    pods = client.CoreV1Api(kubesim.api_client()).list_namespaced_pod(
        staging.namespace, label_selector="app=checkout"
    )
    running = [p for p in pods.items if not p.metadata.deletion_timestamp]
    assert len(running) == 2
    for pod in running:
        assert pod.spec.node_name.startswith("apollo-node-")  # bound by the real scheduler
        assert pod.spec.containers[0].image == version.image
        assert pod.status.container_statuses[0].ready


def test_a_crash_looping_version_ends_failed_with_the_containers_reason(
    bob: User, staging: Environment, kubesim: control_plane.ControlPlaneHandle
) -> None:
    service = factories.make_service("crashy")
    version = factories.make_version(service)
    kubesim.register_image(version.image, "crashloop", seconds=0.05, exit_code=3)
    deployment = wait_until_terminal(deploy(bob, service, staging, version).deployment, timeout=60)  # type: ignore[arg-type]
    assert deployment.status == Status.FAILED
    assert "crash-looping" in deployment.status_reason
    assert "CrashLoopBackOff" in str(deployment.timeline)
