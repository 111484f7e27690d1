"""Apollo applies manifests server-side as field manager `apollo`: kubesim's managedFields show it.

Read back like `kubectl get -o yaml --show-managed-fields`: through the official kubernetes
client over HTTP, against kubesim, with the real worker."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from kubernetes import client

from deployments.models import Service
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import SERVICE_TEMPLATE, deploy, wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

# Node ports are cluster-wide in the session cluster: ones no other test uses, one per test (a
# real API server frees a port only when the namespace controller has deleted the last test's
# namespace, seconds later).
NODE_PORTS = {"first": 31871, "hand-edit": 31872, "label": 31873}


def _ledger(node_port: int) -> Service:
    return factories.make_service(
        "ledger", service_template=SERVICE_TEMPLATE, default_variables={"node_port": node_port}
    )


def _deploy_done(user: User, service: Service, environment: Environment, message: str) -> str:
    version = factories.make_version(service)
    outcome = deploy(user, service, environment, version, message=message)
    assert outcome.deployment is not None, outcome.reason
    deployment = wait_until_terminal(outcome.deployment)
    assert deployment.status == Status.DONE, deployment.status_reason
    return version.git_commit_sha


def _entries(obj: Any, manager: str) -> list[client.V1ManagedFieldsEntry]:
    return [m for m in obj.metadata.managed_fields or [] if m.manager == manager]


def _applied(obj: Any) -> client.V1ManagedFieldsEntry:
    """Apollo's one Apply entry."""
    (entry,) = [m for m in _entries(obj, "apollo") if m.operation == "Apply"]
    return entry


def _owns(entry: client.V1ManagedFieldsEntry, *path: str) -> bool:
    node = entry.fields_v1 or {}
    for part in path:
        key = f"f:{part}"
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def test_the_deployment_and_service_show_apollo_applying_their_fields(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service = _ledger(NODE_PORTS["first"])
    _deploy_done(alice, service, staging, "first")
    api = kubesim.api_client()
    running = client.AppsV1Api(api).read_namespaced_deployment("ledger", staging.namespace)
    exposed = client.CoreV1Api(api).read_namespaced_service("ledger", staging.namespace)
    for obj, api_version in ((running, "apps/v1"), (exposed, "v1")):
        assert {m.operation for m in _entries(obj, "apollo")} == {"Apply"}
        entry = _applied(obj)
        assert entry.api_version == api_version
        assert entry.fields_type == "FieldsV1"
        assert entry.time is not None
        assert entry.subresource in (None, "")
        assert _owns(entry, "metadata", "labels", "app.kubernetes.io/managed-by")
        # Nobody applied these objects but Apollo.
        assert [m.manager for m in obj.metadata.managed_fields if m.operation == "Apply"] == [
            "apollo"
        ]
    deployment_entry = _applied(running)
    assert _owns(deployment_entry, "spec", "replicas")
    assert _owns(deployment_entry, "spec", "template", "spec", "containers")
    service_entry = _applied(exposed)
    assert _owns(service_entry, "spec", "ports")
    assert _owns(service_entry, "spec", "type")


def test_a_hand_edit_is_taken_back_by_the_next_deployment(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    """Apollo applies with force: a field someone else changed (and so owns) returns to Apollo."""
    service = _ledger(NODE_PORTS["hand-edit"])
    _deploy_done(alice, service, staging, "first")
    apps = client.AppsV1Api(kubesim.api_client())
    edited = apps.patch_namespaced_deployment(
        "ledger",
        staging.namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "registry.example.com/ledger:hotfix"}
                        ]
                    }
                }
            }
        },
        field_manager="kubectl-edit",
    )
    (editor,) = _entries(edited, "kubectl-edit")
    assert editor.operation == "Update"
    assert _owns(editor, "spec", "template", "spec", "containers")

    sha = _deploy_done(alice, service, staging, "second")
    running = apps.read_namespaced_deployment("ledger", staging.namespace)
    assert running.spec.template.spec.containers[0].image == f"registry.example.com/ledger:{sha}"
    entry = _applied(running)
    assert _owns(entry, "spec", "template", "spec", "containers")
    assert not any(
        _owns(m, "spec", "template", "spec", "containers")
        for m in _entries(running, "kubectl-edit")
    )


def test_a_label_dropped_from_the_template_is_removed_by_the_next_apply(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    """Server-side apply with one stable manager name prunes what Apollo stopped applying."""
    service = _ledger(NODE_PORTS["label"])
    service.deployment_template = service.deployment_template.replace(
        "  name: {{service}}\n", "  name: {{service}}\n  labels: {team: payments}\n", 1
    )
    service.save()
    _deploy_done(alice, service, staging, "with the team label")
    apps = client.AppsV1Api(kubesim.api_client())
    assert (
        apps.read_namespaced_deployment("ledger", staging.namespace).metadata.labels["team"]
        == "payments"
    )

    service.deployment_template = factories.DEPLOYMENT_TEMPLATE
    service.save()
    _deploy_done(alice, service, staging, "without it")
    running = apps.read_namespaced_deployment("ledger", staging.namespace)
    assert "team" not in running.metadata.labels
    assert running.metadata.labels["app.kubernetes.io/managed-by"] == "apollo"
