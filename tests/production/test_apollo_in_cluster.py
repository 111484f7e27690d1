"""Apollo as a pod of deploy/ sees it: an in-cluster cluster, configured only from what the
kubelet gives the pod (KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount's token and the
cluster's CA from kube-root-ca.crt), with the least RBAC of deploy/deploy-target in the
namespace it deploys to, and nothing in the others.

On the real control plane (RBAC on, tokens issued by its TokenRequest API), cluster/ci.sh."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from deployments.status import Status
from environments.models import Cluster, Environment
from tests import factories
from tests.kubeenv import SERVICE_TEMPLATE, deploy, wait_until_terminal
from tests.production.kustomize import (
    Installation,
    installation,
    needs_kubectl,
    needs_real_cluster,
    write_overlay,
)
from tests.production.test_incluster_credentials import ProjectedVolume

__all__ = ["installation"]  # the fixture

pytestmark = [
    needs_kubectl,
    needs_real_cluster,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
]


def grant_target(installation: Installation, tmp_path: Path, namespace: str) -> None:
    """deploy/deploy-target for namespace, bound to this installation's ServiceAccount."""
    subject = [
        {"op": "replace", "path": "/subjects/0/name", "value": installation.service_account},
        {"op": "replace", "path": "/subjects/0/namespace", "value": installation.namespace},
    ]
    overlay = write_overlay(
        tmp_path / f"target-{namespace}",
        {
            "namespace": namespace,
            "resources": ["deploy-target"],
            "patches": [
                {"target": {"kind": "RoleBinding"}, "patch": json.dumps(subject)},
            ],
        },
    )
    installation.kubectl("apply", "-k", str(overlay), "--server-side")


def root_ca(installation: Installation) -> str:
    """The CA a pod mounts: the kube-root-ca.crt ConfigMap its namespace is given."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = installation.kubectl(
            "-n", installation.namespace, "get", "configmap", "kube-root-ca.crt",
            "-o", "jsonpath={.data.ca\\.crt}", check=False,
        )  # fmt: skip
        if "BEGIN CERTIFICATE" in found:
            return found
        time.sleep(0.2)
    raise AssertionError("kube-root-ca.crt was not published into the namespace")


@pytest.fixture
def pod(
    kubesim: Any, installation: Installation, tmp_path: Path, settings: Any, monkeypatch: Any
) -> ProjectedVolume:
    """This process as a pod of the installation: its env and its ServiceAccount volume."""
    installation.kubectl("apply", "-k", str(installation.overlay), "--server-side")
    address = urlsplit(kubesim.url)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", address.hostname or "")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(address.port))
    settings.APOLLO_SERVICEACCOUNT_DIR = str(tmp_path / "serviceaccount")
    volume = ProjectedVolume(tmp_path / "serviceaccount", ca_pem=root_ca(installation))
    volume.write(issue_token(installation))
    return volume


def issue_token(installation: Installation) -> str:
    return installation.kubectl(
        "-n", installation.namespace, "create", "token", installation.service_account,
        "--duration=10m",
    ).strip()  # fmt: skip


def in_cluster_environment(name: str, namespace: str) -> Environment:
    cluster, _ = Cluster.objects.get_or_create(
        name="in-pod", defaults={"connection": Cluster.Connection.IN_CLUSTER}
    )
    return factories.make_environment(
        name, cluster=cluster, namespace=namespace, rollout_timeout_seconds=60
    )


def test_bobs_deploy_through_the_pods_service_account_ends_done_in_a_granted_namespace(
    bob: User,
    installation: Installation,
    pod: ProjectedVolume,
    kubesim_namespace: str,
    tmp_path: Path,
) -> None:
    grant_target(installation, tmp_path, kubesim_namespace)
    staging = in_cluster_environment("staging", kubesim_namespace)
    service = factories.make_service(
        "checkout",
        service_template=SERVICE_TEMPLATE,
        default_variables={"node_port": 30481, "replicas": 2},
    )
    version = factories.make_version(service)
    deployment = wait_until_terminal(
        deploy(bob, service, staging, version).deployment,  # type: ignore[arg-type]
        timeout=90,
    )
    assert deployment.status == Status.DONE, deployment.status_reason
    # The rotation of the token (the kubelet's) is followed by the next deployment.
    pod.write(issue_token(installation))
    again = factories.make_version(service)
    deployment = wait_until_terminal(
        deploy(bob, service, staging, again).deployment,  # type: ignore[arg-type]
        timeout=90,
    )
    assert deployment.status == Status.DONE, deployment.status_reason


def test_a_namespace_without_the_deploy_target_role_refuses_the_service_account(
    bob: User, installation: Installation, pod: ProjectedVolume, kubesim_namespace: str
) -> None:
    staging = in_cluster_environment("staging", kubesim_namespace)  # never granted
    service = factories.make_service("checkout")
    version = factories.make_version(service)
    deployment = wait_until_terminal(
        deploy(bob, service, staging, version).deployment,  # type: ignore[arg-type]
        timeout=90,
    )
    assert deployment.status == Status.FAILED
    assert "forbidden" in deployment.status_reason.lower(), deployment.status_reason
    listed = installation.kubectl("-n", kubesim_namespace, "get", "deployments", "-o", "name")
    assert listed.strip() == ""
