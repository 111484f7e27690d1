"""Server-side apply through DynamicClient and managedFields ownership."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from tests.kubesim.helpers import deployment


def deployments(api: Any) -> Any:
    return dynamic.DynamicClient(api).resources.get(api_version="apps/v1", kind="Deployment")


def test_apply_creates_then_updates(kubesim_api: Any, kubesim_namespace: str) -> None:
    resource = deployments(kubesim_api)
    body = deployment("applied", replicas=2)
    created = resource.server_side_apply(
        body=body, field_manager="apollo", namespace=kubesim_namespace
    )
    assert created.metadata.name == "applied"
    assert created.spec.replicas == 2
    managers = {(m.manager, m.operation) for m in created.metadata.managedFields}
    assert ("apollo", "Apply") in managers
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/web:2.0"
    updated = resource.server_side_apply(
        body=body, field_manager="apollo", namespace=kubesim_namespace
    )
    assert updated.spec.template.spec.containers[0].image == "registry.example/web:2.0"
    assert updated.metadata.generation == 2
    typed = client.AppsV1Api(kubesim_api).read_namespaced_deployment("applied", kubesim_namespace)
    assert isinstance(typed, client.V1Deployment)
    assert typed.spec.strategy.type == "RollingUpdate"


def test_apply_removes_fields_the_manager_stopped_applying(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    resource = deployments(kubesim_api)
    body = deployment("prune", replicas=1)
    body["metadata"]["labels"] = {"a": "1", "b": "2"}
    resource.server_side_apply(body=body, field_manager="apollo", namespace=kubesim_namespace)
    body["metadata"]["labels"] = {"a": "1"}
    result = resource.server_side_apply(
        body=body, field_manager="apollo", namespace=kubesim_namespace
    )
    assert result.to_dict()["metadata"]["labels"] == {"a": "1"}


def test_apply_conflicts_with_another_manager_unless_forced(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    resource = deployments(kubesim_api)
    body = deployment("owned", replicas=2)
    resource.server_side_apply(body=body, field_manager="apollo", namespace=kubesim_namespace)
    # Someone scales by hand: an Update operation takes ownership of spec.replicas.
    client.AppsV1Api(kubesim_api).patch_namespaced_deployment(
        "owned", kubesim_namespace, {"spec": {"replicas": 5}}, field_manager="kubectl-scale"
    )
    body["spec"]["replicas"] = 3
    with pytest.raises(ApiException) as raised:
        resource.server_side_apply(body=body, field_manager="apollo", namespace=kubesim_namespace)
    assert raised.value.status == 409
    status = json.loads(raised.value.body)
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"][0]["field"] == ".spec.replicas"
    assert 'conflict with "kubectl-scale"' in status["message"]
    forced = resource.server_side_apply(
        body=body, field_manager="apollo", namespace=kubesim_namespace, force_conflicts=True
    )
    assert forced.spec.replicas == 3


def test_applying_the_same_value_shares_ownership_without_conflict(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    resource = deployments(kubesim_api)
    body = deployment("shared", replicas=2)
    resource.server_side_apply(body=body, field_manager="apollo", namespace=kubesim_namespace)
    other = resource.server_side_apply(
        body=body, field_manager="other", namespace=kubesim_namespace
    )
    assert other.spec.replicas == 2


def test_apply_needs_a_field_manager(kubesim_api: Any, kubesim_namespace: str) -> None:
    apps = client.AppsV1Api(kubesim_api)
    with pytest.raises(ApiException) as raised:
        apps.patch_namespaced_deployment(
            "x", kubesim_namespace, deployment("x"), _content_type="application/apply-patch+yaml"
        )
    assert raised.value.status == 400
    assert "fieldManager" in json.loads(raised.value.body)["message"]


def test_apply_keeps_a_rollout_restart_annotation_owned_by_someone_else(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    resource = deployments(kubesim_api)
    body = deployment("restarted", replicas=1)
    resource.server_side_apply(body=body, field_manager="apollo", namespace=kubesim_namespace)
    client.AppsV1Api(kubesim_api).patch_namespaced_deployment(
        "restarted",
        kubesim_namespace,
        {
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
                    }
                }
            }
        },
        field_manager="kubectl-rollout",
    )
    again = resource.server_side_apply(
        body=body, field_manager="apollo", namespace=kubesim_namespace
    )
    annotations = again.to_dict()["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}


def test_apply_serves_services_and_ingresses_too(kubesim_api: Any, kubesim_namespace: str) -> None:
    resources = dynamic.DynamicClient(kubesim_api).resources
    services = resources.get(api_version="v1", kind="Service")
    ingresses = resources.get(api_version="networking.k8s.io/v1", kind="Ingress")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30123}],
        },
    }
    applied = services.server_side_apply(
        body=service, field_manager="apollo", namespace=kubesim_namespace
    )
    assert applied.spec.ports[0].nodePort == 30123
    again = services.server_side_apply(
        body=service, field_manager="apollo", namespace=kubesim_namespace
    )
    assert again.spec.clusterIP == applied.spec.clusterIP
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {
            "rules": [
                {
                    "host": "web.example",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    created = ingresses.server_side_apply(
        body=ingress, field_manager="apollo", namespace=kubesim_namespace
    )
    assert created.spec.rules[0].host == "web.example"
    typed = client.NetworkingV1Api(kubesim_api).read_namespaced_ingress("web", kubesim_namespace)
    assert isinstance(typed, client.V1Ingress)
