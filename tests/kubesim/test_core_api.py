"""CRUD, selectors, paging, patches and metadata through the official client."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kubesim.helpers import deployment, pod, wait_for


def test_objects_get_uid_timestamps_and_increasing_resource_versions(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    first = core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "a"}})
    second = core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": "b"}})
    assert isinstance(first, client.V1ConfigMap)
    assert first.metadata.uid
    assert first.metadata.uid != second.metadata.uid
    assert first.metadata.creation_timestamp is not None
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)


def test_generation_is_bumped_on_spec_changes_only(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    apps = client.AppsV1Api(kubesim_api)
    created = apps.create_namespaced_deployment(kubesim_namespace, deployment("gen", replicas=1))
    assert created.metadata.generation == 1
    labelled = apps.patch_namespaced_deployment(
        "gen", kubesim_namespace, {"metadata": {"labels": {"team": "a"}}}
    )
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("gen", kubesim_namespace, {"spec": {"replicas": 2}})
    assert scaled.metadata.generation == 2


def test_list_filters_by_label_selectors(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    for name, labels in [
        ("a", {"tier": "web", "env": "prod"}),
        ("b", {"tier": "db", "env": "prod"}),
        ("c", {"tier": "web"}),
        ("d", {}),
    ]:
        core.create_namespaced_config_map(
            kubesim_namespace, {"metadata": {"name": name, "labels": labels}}
        )

    def names(selector: str) -> list[str]:
        items = core.list_namespaced_config_map(kubesim_namespace, label_selector=selector).items
        return sorted(i.metadata.name for i in items)

    assert names("tier=web") == ["a", "c"]
    assert names("tier==web,env=prod") == ["a"]
    assert names("tier!=web") == ["b", "d"]
    assert names("tier in (web, db)") == ["a", "b", "c"]
    assert names("tier notin (web)") == ["b", "d"]
    assert names("env") == ["a", "b"]
    assert names("!env") == ["c", "d"]


def test_list_filters_by_field_selectors(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(kubesim_namespace, pod("p1"))
    core.create_namespaced_pod(kubesim_namespace, pod("p2"))
    wait_for(
        lambda: all(
            p.status.phase == "Running" for p in core.list_namespaced_pod(kubesim_namespace).items
        )
    )
    by_name = core.list_namespaced_pod(kubesim_namespace, field_selector="metadata.name=p2").items
    assert [p.metadata.name for p in by_name] == ["p2"]
    everywhere = core.list_pod_for_all_namespaces(
        field_selector=f"metadata.namespace={kubesim_namespace},status.phase=Running"
    ).items
    assert sorted(p.metadata.name for p in everywhere) == ["p1", "p2"]
    assert (
        core.list_namespaced_pod(kubesim_namespace, field_selector="status.phase=Pending").items
        == []
    )


def test_list_pages_with_limit_and_continue(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    for index in range(7):
        core.create_namespaced_config_map(kubesim_namespace, {"metadata": {"name": f"cm-{index}"}})
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(kubesim_namespace, limit=3, _continue=token)
        seen += [i.metadata.name for i in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 7 - len(seen)
    assert pages == 3
    assert seen == [f"cm-{i}" for i in range(7)]


def test_json_merge_and_strategic_merge_patches(kubesim_api: Any, kubesim_namespace: str) -> None:
    apps = client.AppsV1Api(kubesim_api)
    body = deployment(
        "patchy",
        replicas=1,
        env=[{"name": "A", "value": "1"}],
        ports=[{"containerPort": 8080, "name": "http"}],
    )
    apps.create_namespaced_deployment(kubesim_namespace, body)
    # Strategic merge: containers merge by name, env by name, ports by containerPort.
    patched = apps.patch_namespaced_deployment(
        "patchy",
        kubesim_namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "env": [{"name": "B", "value": "2"}],
                                "ports": [{"containerPort": 8778, "name": "jolokia"}],
                            }
                        ]
                    }
                }
            }
        },
    )
    container = patched.spec.template.spec.containers[0]
    assert container.image == "registry.example/web:1.0"
    assert [e.name for e in container.env] == ["A", "B"]
    assert [p.container_port for p in container.ports] == [8080, 8778]
    # JSON patch.
    patched = apps.patch_namespaced_deployment(
        "patchy",
        kubesim_namespace,
        [
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        ],
        _content_type="application/json-patch+json",
    )
    assert (patched.spec.replicas, patched.metadata.labels) == (3, {"x": "y"})
    # Merge patch replaces lists wholesale.
    merged = apps.patch_namespaced_deployment(
        "patchy",
        kubesim_namespace,
        {"metadata": {"labels": {"x": None, "z": "1"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"z": "1"}


def test_a_strategic_patch_can_delete_a_list_item(kubesim_api: Any, kubesim_namespace: str) -> None:
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_deployment(
        kubesim_namespace,
        deployment(
            "envs", replicas=1, env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
        ),
    )
    patched = apps.patch_namespaced_deployment(
        "envs",
        kubesim_namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]
                    }
                }
            }
        },
    )
    assert [e.name for e in patched.spec.template.spec.containers[0].env] == ["B"]


def test_secrets_string_data_is_encoded(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    secret = core.create_namespaced_secret(
        kubesim_namespace, {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}
    )
    assert secret.data == {"password": "aHVudGVyMg=="}
    assert secret.type == "Opaque"


def test_deleting_a_pod_is_graceful(kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(kubesim_namespace, pod("bye"))
    wait_for(lambda: core.read_namespaced_pod("bye", kubesim_namespace).status.phase == "Running")
    deleted = core.delete_namespaced_pod("bye", kubesim_namespace)
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 30

    def gone() -> bool:
        try:
            core.read_namespaced_pod("bye", kubesim_namespace)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(gone, what="pod removal")


def test_namespaced_lists_need_the_namespace(kubesim_api: Any) -> None:
    with pytest.raises(ApiException) as raised:
        client.CoreV1Api(kubesim_api).list_namespaced_pod("nope-nope")
    assert raised.value.status == 404


def test_deleting_a_namespace_removes_its_objects(kubesim_api: Any) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_pod("doomed", pod("p"))
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    # The client types this as V1Status; the server answers with the Namespace, as real ones do.
    terminating = core.delete_namespace("doomed")
    assert terminating["status"]["phase"] == "Terminating"

    def gone() -> bool:
        return "doomed" not in [n.metadata.name for n in core.list_namespace().items]

    wait_for(gone, what="namespace removal")
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("c", "doomed")
