"""Pod proxy to a simulated Jolokia agent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubesim.testing import KubesimHandle
from tests.kubesim.helpers import wait_for


def java_pod(
    core: client.CoreV1Api, namespace: str, name: str, *, port_name: str = "jolokia"
) -> None:
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.example/java:1",
                        "ports": [
                            {"containerPort": 8080, "name": "http"},
                            {"containerPort": 8778, "name": port_name},
                        ],
                    }
                ]
            },
        },
    )
    wait_for(lambda: core.read_namespaced_pod(name, namespace).status.phase == "Running")


def proxy_get(api: Any, namespace: str, name: str, path: str) -> tuple[int, str]:
    core = client.CoreV1Api(api)
    try:
        response = core.connect_get_namespaced_pod_proxy_with_path(
            name, namespace, path, _preload_content=False
        )
    except ApiException as exc:
        return exc.status, exc.body
    return response.status, response.data.decode()


def test_jolokia_version_and_read(kubesim_api: Any, kubesim_namespace: str) -> None:
    java_pod(client.CoreV1Api(kubesim_api), kubesim_namespace, "java")
    code, text = proxy_get(kubesim_api, kubesim_namespace, "java:8778", "jolokia/version")
    assert code == 200
    assert json.loads(text)["value"]["agent"] == "1.7.2"
    code, text = proxy_get(
        kubesim_api,
        kubesim_namespace,
        "java:8778",
        "jolokia/read/java.lang:type=Memory/HeapMemoryUsage",
    )
    body = json.loads(text)
    assert body["status"] == 200
    assert body["value"]["used"] < body["value"]["max"]


def test_jolokia_post_requests(
    kubesim: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    java_pod(client.CoreV1Api(kubesim_api), kubesim_namespace, "java")
    path = f"/api/v1/namespaces/{kubesim_namespace}/pods/java:8778/proxy/jolokia/"
    response = kubesim_api.rest_client.pool_manager.request(
        "POST",
        kubesim_api.configuration.host + path,
        body=json.dumps(
            [
                {"type": "read", "mbean": "java.lang:type=Threading", "attribute": "ThreadCount"},
                {"type": "read", "mbean": "java.lang:type=Nope"},
            ]
        ),
        headers={"Authorization": f"Bearer {kubesim.token}", "Content-Type": "application/json"},
    )
    assert response.status == 200
    first, second = json.loads(response.data)
    assert first["status"] == 200
    assert first["value"] > 0
    assert second["status"] == 404
    assert second["error_type"] == "javax.management.InstanceNotFoundException"


def test_a_pod_without_a_jolokia_port_is_503(kubesim_api: Any, kubesim_namespace: str) -> None:
    java_pod(client.CoreV1Api(kubesim_api), kubesim_namespace, "plain", port_name="metrics")
    code, text = proxy_get(kubesim_api, kubesim_namespace, "plain:8778", "jolokia/version")
    assert code == 503
    assert json.loads(text)["reason"] == "ServiceUnavailable"


def test_a_missing_pod_is_404(kubesim_api: Any, kubesim_namespace: str) -> None:
    code, _ = proxy_get(kubesim_api, kubesim_namespace, "ghost:8778", "jolokia/version")
    assert code == 404


def test_an_image_that_runs_an_agent_serves_jolokia_on_its_port(
    kubesim: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    image = f"registry.example/jvm-with-agent:{kubesim_namespace}"
    kubesim.register_image(image, jolokia_port=7777)
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(
        kubesim_namespace,
        {"metadata": {"name": "agent"}, "spec": {"containers": [{"name": "app", "image": image}]}},
    )
    wait_for(lambda: core.read_namespaced_pod("agent", kubesim_namespace).status.phase == "Running")
    code, _text = proxy_get(
        kubesim_api, kubesim_namespace, "agent:7777", "jolokia/read/java.lang:type=Runtime/Uptime"
    )
    assert code == 200
    code, _text = proxy_get(kubesim_api, kubesim_namespace, "agent:8778", "jolokia/version")
    assert code == 503


def test_an_annotation_declares_no_agent(kubesim_api: Any, kubesim_namespace: str) -> None:
    # What listens on a pod's port is the image's business, not a client's annotation.
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(
        kubesim_namespace,
        {
            "metadata": {"name": "ann", "annotations": {"example.com/jolokia-port": "7777"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example/java:1"}]},
        },
    )
    wait_for(lambda: core.read_namespaced_pod("ann", kubesim_namespace).status.phase == "Running")
    code, _text = proxy_get(kubesim_api, kubesim_namespace, "ann:7777", "jolokia/version")
    assert code == 503


def test_a_jolokia_port_that_is_no_port_is_a_400(kubesim: KubesimHandle) -> None:
    from kubesim.testing import ControlError

    with pytest.raises(ControlError, match="jolokiaPort must be a port number"):
        kubesim.register_image("registry.example/jvm-with-agent:bad", jolokia_port=70000)
    assert "registry.example/jvm-with-agent:bad" not in kubesim.state()["registry"]["images"]


@pytest.mark.parametrize("image", ["registry.example/java:missing"])
def test_a_pod_that_is_not_running_is_503(
    kubesim_api: Any, kubesim_namespace: str, image: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(
        kubesim_namespace,
        {
            "metadata": {"name": "down"},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": image,
                        "ports": [{"containerPort": 8778, "name": "jolokia"}],
                    }
                ]
            },
        },
    )
    code, _ = proxy_get(kubesim_api, kubesim_namespace, "down:8778", "jolokia/version")
    assert code == 503
