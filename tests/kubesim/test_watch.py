"""watch.Watch: events, resuming from a resourceVersion, bookmarks, timeouts, selections."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from kubernetes import client, watch

from kubesim.testing import KubesimHandle


def test_watch_streams_added_modified_deleted(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    start = core.list_namespaced_config_map(kubesim_namespace).metadata.resource_version
    core.create_namespaced_config_map(
        kubesim_namespace, {"metadata": {"name": "w"}, "data": {"a": "1"}}
    )
    core.patch_namespaced_config_map("w", kubesim_namespace, {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w", kubesim_namespace)
    seen = []
    for event in watch.Watch().stream(
        core.list_namespaced_config_map,
        kubesim_namespace,
        resource_version=start,
        timeout_seconds=1,
    ):
        assert isinstance(event["object"], client.V1ConfigMap)
        seen.append((event["type"], event["object"].data))
    assert seen == [("ADDED", {"a": "1"}), ("MODIFIED", {"a": "2"}), ("DELETED", {"a": "2"})]


def test_watch_without_resource_version_starts_with_current_objects(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "x"}})
    events = list(
        watch.Watch().stream(core.list_namespaced_config_map, kubesim_namespace, timeout_seconds=1)
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "x")]


def test_watch_resumes_from_the_last_resource_version(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    w = watch.Watch()
    core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "one"}})
    first = list(w.stream(core.list_namespaced_config_map, kubesim_namespace, timeout_seconds=1))
    assert [e["object"].metadata.name for e in first] == ["one"]
    core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "two"}})
    resumed = list(
        w.stream(
            core.list_namespaced_config_map,
            kubesim_namespace,
            resource_version=w.resource_version,
            timeout_seconds=1,
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in resumed] == [("ADDED", "two")]


def test_watch_honours_timeout_seconds(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    started = time.monotonic()
    assert (
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map, kubesim_namespace, timeout_seconds=1
            )
        )
        == []
    )
    assert 0.9 < time.monotonic() - started < 3


def test_watch_sends_bookmarks_when_allowed(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    response = core.list_namespaced_config_map(
        kubesim_namespace,
        watch=True,
        allow_watch_bookmarks=True,
        timeout_seconds=2,
        _preload_content=False,
    )
    lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    bookmarks = [line for line in lines if line["type"] == "BOOKMARK"]
    assert bookmarks, lines
    assert bookmarks[0]["object"]["kind"] == "ConfigMap"
    assert int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) > 0


def test_a_watch_with_a_selector_sees_objects_enter_and_leave(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    start = core.list_namespaced_config_map(kubesim_namespace).metadata.resource_version
    core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "s"}})
    core.patch_namespaced_config_map(
        "s", kubesim_namespace, {"metadata": {"labels": {"pick": "me"}}}
    )
    core.patch_namespaced_config_map(
        "s", kubesim_namespace, {"metadata": {"labels": {"pick": "no"}}}
    )
    events = list(
        watch.Watch().stream(
            core.list_namespaced_config_map,
            kubesim_namespace,
            label_selector="pick=me",
            resource_version=start,
            timeout_seconds=1,
        )
    )
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_one_hundred_watchers_all_see_an_event(
    kubesim: KubesimHandle, kubesim_namespace: str
) -> None:
    api = kubesim.api_client()
    api.configuration.connection_pool_maxsize = 120
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 120
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(kubesim_namespace).metadata.resource_version
    received: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(101)

    def watcher() -> None:
        response = core.list_namespaced_config_map(
            kubesim_namespace,
            watch=True,
            resource_version=rv,
            timeout_seconds=10,
            _preload_content=False,
        )
        ready.wait()
        line = response.readline()
        with lock:
            received.append(json.loads(line)["object"]["metadata"]["name"])
        response.close()

    threads = [threading.Thread(target=watcher) for _ in range(100)]
    for thread in threads:
        thread.start()
    ready.wait()
    core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "fanout"}})
    for thread in threads:
        thread.join(15)
    assert received == ["fanout"] * 100
    api.close()
