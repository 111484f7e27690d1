"""Pod logs: tail, since, timestamps, limitBytes, previous, follow, and the 400 errors."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kubesim.helpers import pod, wait_for


@pytest.fixture
def running_pod(kubesim_api: Any, kubesim_namespace: str) -> str:
    core = client.CoreV1Api(kubesim_api)
    body = pod("talker", annotations={"kubesim.io/log-rate": "200"})
    core.create_namespaced_pod(kubesim_namespace, body)
    wait_for(
        lambda: core.read_namespaced_pod("talker", kubesim_namespace).status.phase == "Running"
    )
    # 40 lines written (0.2 s at 200 a second): the tests below read a mix of them.
    wait_for(
        lambda: len(core.read_namespaced_pod_log("talker", kubesim_namespace).splitlines()) >= 40,
        what="40 log lines",
    )
    return "talker"


def test_logs_mention_the_pod_and_tail_lines(
    kubesim_api: Any, kubesim_namespace: str, running_pod: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    text = core.read_namespaced_pod_log(running_pod, kubesim_namespace, tail_lines=5)
    lines = text.splitlines()
    assert len(lines) == 5
    assert all(f"[{running_pod}]" in line for line in lines)
    everything = core.read_namespaced_pod_log(running_pod, kubesim_namespace).splitlines()
    assert len(everything) > 5
    assert "starting app" in everything[0]
    assert {line.split()[0] for line in everything} >= {"INFO", "DEBUG"}
    assert any(" /api/" in line for line in everything)


def test_logs_with_timestamps_since_and_limit_bytes(
    kubesim_api: Any, kubesim_namespace: str, running_pod: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    stamped = core.read_namespaced_pod_log(
        running_pod, kubesim_namespace, tail_lines=2, timestamps=True
    ).splitlines()
    assert stamped[0][:4].isdigit()
    assert stamped[0][10] == "T"
    assert stamped[0].split()[0].endswith("Z")
    recent = core.read_namespaced_pod_log(running_pod, kubesim_namespace, since_seconds=1)
    assert 0 < len(recent.splitlines()) < 400
    limited = core.read_namespaced_pod_log(running_pod, kubesim_namespace, limit_bytes=50)
    assert len(limited.encode()) == 50


def test_follow_streams_new_lines_until_the_pod_is_deleted(
    kubesim_api: Any, kubesim_namespace: str, running_pod: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    response = core.read_namespaced_pod_log(
        running_pod, kubesim_namespace, follow=True, tail_lines=1, _preload_content=False
    )
    started = time.monotonic()
    received = 0
    for chunk in response.stream(1024):
        received += chunk.count(b"\n")
        if received >= 50:
            break
    assert received >= 50
    assert time.monotonic() - started < 3
    core.delete_namespaced_pod(running_pod, kubesim_namespace)
    rest = response.read()  # ends because the pod goes away
    assert isinstance(rest, bytes)


def test_previous_logs_without_a_previous_container_are_400(
    kubesim_api: Any, kubesim_namespace: str, running_pod: str
) -> None:
    with pytest.raises(ApiException) as raised:
        client.CoreV1Api(kubesim_api).read_namespaced_pod_log(
            running_pod, kubesim_namespace, previous=True
        )
    assert raised.value.status == 400
    assert "previous terminated container" in json.loads(raised.value.body)["message"]


def test_an_unknown_container_is_400(
    kubesim_api: Any, kubesim_namespace: str, running_pod: str
) -> None:
    with pytest.raises(ApiException) as raised:
        client.CoreV1Api(kubesim_api).read_namespaced_pod_log(
            running_pod, kubesim_namespace, container="nope"
        )
    body = json.loads(raised.value.body)
    assert (raised.value.status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == f"container nope is not valid for pod {running_pod}"


def test_logs_of_a_pod_not_yet_running_are_400(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(kubesim_namespace, pod("nopull", "registry.example/x:missing"))
    wait_for(
        lambda: core.read_namespaced_pod("nopull", kubesim_namespace).status.container_statuses
    )
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log("nopull", kubesim_namespace)
    assert raised.value.status == 400
    assert "is waiting to start" in json.loads(raised.value.body)["message"]


def test_a_multi_container_pod_needs_a_container_name(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(
        kubesim_namespace,
        {
            "metadata": {"name": "two"},
            "spec": {
                "containers": [
                    {"name": "a", "image": "registry.example/a:1"},
                    {"name": "b", "image": "registry.example/b:1"},
                ]
            },
        },
    )
    wait_for(lambda: core.read_namespaced_pod("two", kubesim_namespace).status.phase == "Running")
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log("two", kubesim_namespace)
    assert (
        "a container name must be specified for pod two, choose one of: [a b]" in raised.value.body
    )
    assert "starting b" in core.read_namespaced_pod_log("two", kubesim_namespace, container="b")
