"""The streaming list (WatchList): initial events, the initial-events-end bookmark, then changes.

kubectl >= 1.35 watches this way by default (`rollout status`, `wait`, informers): without the
bookmark it waits until its timeout. Raw requests through the official client over HTTPS,
and kubectl (var/bin/kubectl, built by `make kubectl`) with the feature forced on.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubesim.testing import KubesimHandle
from tests.kubesim.helpers import deployment, pod, wait_for

JSON = dict[str, Any]
STREAMING_LIST = {
    "watch": "true",
    "sendInitialEvents": "true",
    "resourceVersionMatch": "NotOlderThan",
    "allowWatchBookmarks": "true",
}
KUBECTL = Path(__file__).resolve().parents[2] / "var" / "bin" / "kubectl"


def open_watch(api: Any, namespace: str, params: dict[str, str], plural: str = "configmaps") -> Any:
    """A watch on the namespace's objects with these query parameters: the raw HTTP response."""
    method, url, headers, _body, _post = api.param_serialize(
        "GET",
        f"/api/v1/namespaces/{namespace}/{plural}",
        query_params=list({"timeoutSeconds": "30", **params}.items()),
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    return api.call_api(method, url, headers, _request_timeout=(10, 60)).response


def refusal(api: Any, namespace: str, params: dict[str, str]) -> tuple[int, JSON]:
    """The status code and Status of a request the server answers with an error."""
    response = open_watch(api, namespace, params)
    try:
        assert response.status >= 400, response.status
        return response.status, json.loads(response.data)
    finally:
        response.release_conn()


def events(response: Any) -> Iterator[JSON]:
    """The watch events as they arrive (the server ends the stream after 30 s at the latest)."""
    assert response.status == 200, response.data
    buffer = b""
    for chunk in response.stream(1024, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


def until_initial_events_end(stream: Iterator[JSON]) -> tuple[list[JSON], JSON]:
    """The events before the initial-events-end bookmark, and that bookmark."""
    before: list[JSON] = []
    for event in stream:
        annotations = event["object"]["metadata"].get("annotations") or {}
        if event["type"] == "BOOKMARK" and annotations.get("k8s.io/initial-events-end") == "true":
            return before, event
        before.append(event)
    raise AssertionError(f"the stream ended without the initial-events-end bookmark: {before}")


def names(events: list[JSON]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


def config_map(name: str, **labels: str) -> JSON:
    return {"metadata": {"name": name, "labels": labels}}


def test_the_current_objects_come_first_then_the_bookmark_with_their_version_then_changes(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(kubesim_namespace, config_map("one"))
    two = core.create_namespaced_config_map(kubesim_namespace, config_map("two"))
    response = open_watch(kubesim_api, kubesim_namespace, STREAMING_LIST)
    try:
        stream = events(response)
        initial, bookmark = until_initial_events_end(stream)
        assert sorted(names(initial)) == [("ADDED", "one"), ("ADDED", "two")]
        assert bookmark["object"]["kind"] == "ConfigMap"
        assert bookmark["object"]["apiVersion"] == "v1"
        state_version = int(bookmark["object"]["metadata"]["resourceVersion"])
        assert state_version >= int(two.metadata.resource_version)
        three = core.create_namespaced_config_map(kubesim_namespace, config_map("three"))
        change = next(e for e in stream if e["type"] != "BOOKMARK")
        assert names([change]) == [("ADDED", "three")]
        assert int(three.metadata.resource_version) > state_version
    finally:
        response.release_conn()


def test_label_and_field_selectors_apply_to_the_initial_events(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(kubesim_namespace, config_map("picked", pick="me"))
    core.create_namespaced_config_map(kubesim_namespace, config_map("other", pick="me"))
    core.create_namespaced_config_map(kubesim_namespace, config_map("left", pick="no"))
    for selector, expected in (
        ({"labelSelector": "pick=me"}, [("ADDED", "other"), ("ADDED", "picked")]),
        ({"fieldSelector": "metadata.name=picked"}, [("ADDED", "picked")]),
        ({"labelSelector": "pick=nobody"}, []),
    ):
        response = open_watch(kubesim_api, kubesim_namespace, {**STREAMING_LIST, **selector})
        try:
            initial, _ = until_initial_events_end(events(response))
        finally:
            response.release_conn()
        assert sorted(names(initial)) == expected, selector


def test_an_older_resource_version_still_gets_the_current_state(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    old = core.create_namespaced_config_map(kubesim_namespace, config_map("a"))
    core.patch_namespaced_config_map("a", kubesim_namespace, {"data": {"k": "v"}})
    params = {**STREAMING_LIST, "resourceVersion": old.metadata.resource_version}
    response = open_watch(kubesim_api, kubesim_namespace, params)
    try:
        initial, bookmark = until_initial_events_end(events(response))
    finally:
        response.release_conn()
    assert names(initial) == [("ADDED", "a")]
    assert initial[0]["object"]["data"] == {"k": "v"}
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) > int(
        old.metadata.resource_version
    )


def test_without_allow_watch_bookmarks_the_initial_events_come_without_the_bookmark(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    # As upstream: the end of the initial events is marked only for a client that asked for
    # bookmarks. timeoutSeconds=1 ends the stream, so everything it sent can be read.
    client.CoreV1Api(kubesim_api).create_namespaced_config_map(kubesim_namespace, config_map("x"))
    params = {k: v for k, v in STREAMING_LIST.items() if k != "allowWatchBookmarks"}
    response = open_watch(kubesim_api, kubesim_namespace, {**params, "timeoutSeconds": "1"})
    try:
        seen = list(events(response))
    finally:
        response.release_conn()
    assert names(seen) == [("ADDED", "x")]


def test_send_initial_events_false_starts_after_the_current_state(
    kubesim: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(kubesim_namespace, config_map("before"))
    params = {**STREAMING_LIST, "sendInitialEvents": "false"}
    response = open_watch(kubesim_api, kubesim_namespace, params)
    try:
        stream = events(response)
        # Nothing arrives to show the watch is in place: ask the server before the change.
        wait_for(lambda: kubesim.watches_in(kubesim_namespace) == 1, timeout=30, what="watch")
        core.create_namespaced_config_map(kubesim_namespace, config_map("after"))
        first = next(e for e in stream if e["type"] != "BOOKMARK")
    finally:
        response.release_conn()
    assert names([first]) == [("ADDED", "after")]


def test_a_legacy_watch_without_resource_version_also_ends_its_initial_events(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    # The API server defaults a watch from "" or "0" to sendInitialEvents=true.
    client.CoreV1Api(kubesim_api).create_namespaced_config_map(kubesim_namespace, config_map("x"))
    params = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": "0"}
    response = open_watch(kubesim_api, kubesim_namespace, params)
    try:
        initial, _ = until_initial_events_end(events(response))
    finally:
        response.release_conn()
    assert names(initial) == [("ADDED", "x")]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"watch": "true", "sendInitialEvents": "true"},
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ),
        (
            {"watch": "true", "resourceVersionMatch": "NotOlderThan"},
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ),
        (
            {**STREAMING_LIST, "resourceVersionMatch": "Exact"},
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan; "
            'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"',
        ),
        (
            {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"},
            'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
            "sendInitialEvents is forbidden for list",
        ),
    ],
    ids=["without-match", "match-without-initial-events", "exact", "on-a-list"],
)
def test_invalid_combinations_are_refused_with_422_and_open_no_watch(
    kubesim: KubesimHandle,
    kubesim_api: Any,
    kubesim_namespace: str,
    params: dict[str, str],
    message: str,
) -> None:
    code, status = refusal(kubesim_api, kubesim_namespace, params)
    assert code == 422
    assert (status["reason"], status["message"]) == ("Invalid", message)
    assert status["details"]["kind"] == "ListOptions"
    assert status["details"]["group"] == "meta.k8s.io"
    assert kubesim.watches_in(kubesim_namespace) == 0


def test_a_resource_version_the_server_has_not_reached_is_refused(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    params = {**STREAMING_LIST, "resourceVersion": "999999999"}
    code, status = refusal(kubesim_api, kubesim_namespace, params)
    assert code == 504
    assert status["message"].startswith("Too large resource version")


def test_a_resource_version_that_is_not_a_number_is_a_bad_request(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    params = {**STREAMING_LIST, "resourceVersion": "yesterday"}
    code, status = refusal(kubesim_api, kubesim_namespace, params)
    assert code == 400
    assert "invalid resource version" in status["message"]


# -- kubectl with the streaming list on -------------------------------------------------------


class StreamingKubectl:
    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.base = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "-n", namespace]
        # Forced on whatever this kubectl's default: the client feature under test.
        self.env = {**os.environ, "KUBE_FEATURE_WatchListClient": "true"}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base, *args], capture_output=True, text=True, env=self.env, timeout=60
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*self.base, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )


@pytest.fixture
def kubectl(kubesim: KubesimHandle, kubesim_namespace: str) -> StreamingKubectl:
    if not KUBECTL.exists():
        pytest.skip(f"{KUBECTL} is missing: build it with `make kubectl` (or symlink it)")
    return StreamingKubectl(kubesim.kubeconfig_path, kubesim_namespace)


@pytest.mark.kubectl
def test_kubectl_rollout_status_returns_when_the_deployment_is_ready(
    kubectl: StreamingKubectl, kubesim_api: Any, kubesim_namespace: str
) -> None:
    client.AppsV1Api(kubesim_api).create_namespaced_deployment(
        kubesim_namespace, deployment("web", replicas=2)
    )
    result = kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    assert result.returncode == 0, result.stderr
    assert 'deployment "web" successfully rolled out' in result.stdout


@pytest.mark.kubectl
def test_kubectl_wait_sees_the_pods_that_already_exist(
    kubectl: StreamingKubectl, kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    for name in ("p1", "p2"):
        core.create_namespaced_pod(kubesim_namespace, pod(name, labels={"app": "w"}))
    core.create_namespaced_pod(kubesim_namespace, pod("p3", labels={"app": "other"}))
    result = kubectl.run("wait", "--for=condition=Ready", "pod", "-l", "app=w", "--timeout=30s")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(
        ["pod/p1", "condition", "met", "pod/p2", "condition", "met"]
    )


@pytest.mark.kubectl
def test_kubectl_get_pods_watch_sees_the_initial_pods_then_a_new_one(
    kubectl: StreamingKubectl, kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(kubesim_namespace, pod("first", labels={"app": "w"}))
    core.create_namespaced_pod(kubesim_namespace, pod("skipped", labels={"app": "other"}))
    process = kubectl.popen(
        "get", "pods", "-l", "app=w", "--watch", "-o", "name", "--request-timeout=30s"
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "pod/first"
        core.create_namespaced_pod(kubesim_namespace, pod("second", labels={"app": "w"}))
        seen = {"pod/first"}
        deadline = time.monotonic() + 30
        while "pod/second" not in seen and time.monotonic() < deadline:
            seen.add(process.stdout.readline().strip())
    finally:
        process.terminate()
        process.wait(10)
    assert "pod/second" in seen
    assert "pod/skipped" not in seen
