"""Errors come back as real `Status` objects with the right code and reason."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from kubesim.testing import KubesimHandle
from tests.kubesim.helpers import deployment, pod, wait_for


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    return body


def raw_get(handle: KubesimHandle, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cadata=handle.ca_cert_pem)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(handle.url + path, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, context=context) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_it_rejects_requests_without_the_token(kubesim: KubesimHandle) -> None:
    code, body = raw_get(kubesim, "/api/v1/namespaces", None)
    assert code == 401
    assert body["reason"] == "Unauthorized"
    assert body["kind"] == "Status"


def test_it_rejects_a_wrong_token(kubesim: KubesimHandle) -> None:
    code, body = raw_get(kubesim, "/api/v1/namespaces", "not-the-token")
    assert (code, body["code"]) == (401, 401)


def test_version_is_public_and_discovery_needs_the_token(kubesim: KubesimHandle) -> None:
    code, body = raw_get(kubesim, "/version", None)
    assert code == 200
    assert body["major"] == "1"
    assert raw_get(kubesim, "/apis", None)[0] == 401


def test_the_limited_token_may_read_but_not_exec(
    kubesim: KubesimHandle, kubesim_namespace: str
) -> None:
    admin = client.CoreV1Api(kubesim.api_client())
    admin.create_namespaced_pod(kubesim_namespace, pod("one"))
    wait_for(lambda: admin.read_namespaced_pod("one", kubesim_namespace).status.phase == "Running")
    limited = client.CoreV1Api(kubesim.api_client(limited=True))
    assert limited.read_namespaced_pod("one", kubesim_namespace).metadata.name == "one"
    with pytest.raises(ApiException) as raised:
        stream(
            limited.connect_get_namespaced_pod_exec,
            "one",
            kubesim_namespace,
            command=["echo", "hi"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
    assert "403" in str(raised.value.reason) or raised.value.status == 403


def test_the_limited_token_gets_403_forbidden_on_writes(
    kubesim: KubesimHandle, kubesim_namespace: str
) -> None:
    limited = client.CoreV1Api(kubesim.api_client(limited=True))
    with pytest.raises(ApiException) as raised:
        limited.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "x"}})
    body = status_of(raised.value)
    assert (raised.value.status, body["reason"]) == (403, "Forbidden")
    assert 'cannot create resource "configmaps"' in body["message"]


def test_limited_exec_is_forbidden_like_rbac(
    kubesim: KubesimHandle, kubesim_namespace: str
) -> None:
    code, body = raw_get(
        kubesim,
        f"/api/v1/namespaces/{kubesim_namespace}/pods/x/exec?command=ls",
        kubesim.limited_token,
    )
    assert code == 403
    assert body["reason"] == "Forbidden"
    assert 'cannot create resource "pods/exec"' in body["message"]


def test_a_missing_namespace_is_404(kubesim_api: Any) -> None:
    core = client.CoreV1Api(kubesim_api)
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_config_map("no-such-namespace", {"metadata": {"name": "x"}})
    body = status_of(raised.value)
    assert (raised.value.status, body["reason"]) == (404, "NotFound")
    assert body["message"] == 'namespaces "no-such-namespace" not found'
    assert body["details"] == {"name": "no-such-namespace", "kind": "namespaces"}


def test_a_missing_object_is_404_and_deserialises_as_v1status(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    apps = client.AppsV1Api(kubesim_api)
    with pytest.raises(ApiException) as raised:
        apps.read_namespaced_deployment("ghost", kubesim_namespace)
    status = kubesim_api.deserialize(raised.value.body, "V1Status", "application/json")
    assert isinstance(status, client.V1Status)
    assert (status.code, status.reason) == (404, "NotFound")
    assert status.message == 'deployments.apps "ghost" not found'
    assert status.details.group == "apps"


def test_creating_twice_is_409_already_exists(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "cfg"}})
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "cfg"}})
    body = status_of(raised.value)
    assert (raised.value.status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'configmaps "cfg" already exists'


def test_a_stale_resource_version_is_409_conflict(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    created = core.create_namespaced_config_map(
        kubesim_namespace, {"metadata": {"name": "cfg"}, "data": {"a": "1"}}
    )
    created.data = {"a": "2"}
    core.replace_namespaced_config_map("cfg", kubesim_namespace, created)
    created.data = {"a": "3"}
    with pytest.raises(ApiException) as raised:
        core.replace_namespaced_config_map("cfg", kubesim_namespace, created)
    body = status_of(raised.value)
    assert (raised.value.status, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]


def test_an_invalid_deployment_is_422_with_causes(kubesim_api: Any, kubesim_namespace: str) -> None:
    apps = client.AppsV1Api(kubesim_api)
    body = deployment("bad")
    body["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as raised:
        apps.create_namespaced_deployment(kubesim_namespace, body)
    status = status_of(raised.value)
    assert (raised.value.status, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in status["message"]


def test_an_unsupported_method_is_405(kubesim: KubesimHandle) -> None:
    context = ssl.create_default_context(cadata=kubesim.ca_cert_pem)
    request = urllib.request.Request(  # noqa: S310
        kubesim.url + "/api/v1/namespaces",
        method="PUT",
        data=b"{}",
        headers={"Authorization": f"Bearer {kubesim.token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, context=context)  # noqa: S310
    body = json.loads(raised.value.read())
    assert (raised.value.code, body["reason"]) == (405, "MethodNotAllowed")


def test_a_bad_label_selector_is_400(kubesim_api: Any, kubesim_namespace: str) -> None:
    with pytest.raises(ApiException) as raised:
        client.CoreV1Api(kubesim_api).list_namespaced_pod(
            kubesim_namespace, label_selector="a in b"
        )
    assert (raised.value.status, status_of(raised.value)["reason"]) == (400, "BadRequest")


def test_a_too_old_resource_version_is_410_on_the_watch_stream(
    kubesim: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    first = core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "c0"}})
    old_rv = int(first.metadata.resource_version)
    history = kubesim.server.cluster.store.history_size
    kubesim.server.cluster.store.history_size = 5
    try:
        for index in range(1, 12):
            core.create_namespaced_config_map(
                kubesim_namespace, {"metadata": {"name": f"c{index}"}}
            )
    finally:
        kubesim.server.cluster.store.history_size = history
    response = core.list_namespaced_config_map(
        kubesim_namespace,
        watch=True,
        resource_version=str(old_rv),
        _preload_content=False,
        timeout_seconds=2,
    )
    line = json.loads(response.readline())
    assert line["type"] == "ERROR"
    assert line["object"]["code"] == 410
    assert line["object"]["reason"] == "Expired"
    assert line["object"]["message"].startswith(f"too old resource version: {old_rv}")
    with pytest.raises(ApiException) as raised:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map,
            kubesim_namespace,
            resource_version=str(old_rv),
            timeout_seconds=2,
        ):
            pass
    assert raised.value.status == 410
