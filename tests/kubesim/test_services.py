"""Service cluster IPs and NodePort allocation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def service(name: str, *, kind: str = "NodePort", node_port: int | None = None) -> dict[str, Any]:
    port: dict[str, Any] = {"port": 80, "targetPort": 8080}
    if node_port:
        port["nodePort"] = node_port
    return {
        "metadata": {"name": name},
        "spec": {"type": kind, "selector": {"app": name}, "ports": [port]},
    }


def test_cluster_ips_are_assigned(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    created = core.create_namespaced_service(kubesim_namespace, service("web", kind="ClusterIP"))
    assert created.spec.cluster_ip.startswith("10.96.")
    assert created.spec.cluster_ips == [created.spec.cluster_ip]
    assert created.spec.ports[0].node_port is None


def test_node_ports_are_auto_assigned_in_range(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    created = core.create_namespaced_service(kubesim_namespace, service("auto"))
    assert 30000 <= created.spec.ports[0].node_port <= 32767
    lb = core.create_namespaced_service(kubesim_namespace, service("lb", kind="LoadBalancer"))
    assert 30000 <= lb.spec.ports[0].node_port <= 32767


def test_a_taken_node_port_is_422_across_namespaces(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespace({"metadata": {"name": f"{kubesim_namespace}-b"}})
    try:
        core.create_namespaced_service(kubesim_namespace, service("first", node_port=31080))
        with pytest.raises(ApiException) as raised:
            core.create_namespaced_service(
                f"{kubesim_namespace}-b", service("second", node_port=31080)
            )
        body = json.loads(raised.value.body)
        assert (raised.value.status, body["reason"]) == (422, "Invalid")
        assert "provided port is already allocated" in body["message"]
        assert body["details"]["causes"][0]["field"] == "spec.ports[0].nodePort"
        core.delete_namespaced_service("first", kubesim_namespace)
        freed = core.create_namespaced_service(
            f"{kubesim_namespace}-b", service("second", node_port=31080)
        )
        assert freed.spec.ports[0].node_port == 31080
    finally:
        core.delete_namespace(f"{kubesim_namespace}-b")


def test_an_out_of_range_node_port_is_422(kubesim_api: Any, kubesim_namespace: str) -> None:
    with pytest.raises(ApiException) as raised:
        client.CoreV1Api(kubesim_api).create_namespaced_service(
            kubesim_namespace, service("far", node_port=29999)
        )
    assert raised.value.status == 422
    assert "not in the valid range" in raised.value.body


def test_updating_a_service_keeps_its_node_port(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    created = core.create_namespaced_service(kubesim_namespace, service("keep"))
    patched = core.patch_namespaced_service(
        "keep", kubesim_namespace, {"metadata": {"labels": {"a": "b"}}}
    )
    assert patched.spec.ports[0].node_port == created.spec.ports[0].node_port
    assert patched.spec.cluster_ip == created.spec.cluster_ip
