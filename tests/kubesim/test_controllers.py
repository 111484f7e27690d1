"""Deployment and ReplicaSet controllers: rollouts within bounds, Recreate, scale, cascading."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kubesim.testing import KubesimHandle
from tests.kubesim.helpers import deployment, wait_for


def rolled_out(apps: client.AppsV1Api, name: str, namespace: str) -> bool:
    d = apps.read_namespaced_deployment(name, namespace)
    s = d.status
    conditions = {c.type: c.reason for c in s.conditions or []}
    return bool(
        s.observed_generation >= d.metadata.generation
        and s.updated_replicas == d.spec.replicas == s.available_replicas == (s.replicas or 0)
        and conditions.get("Progressing") == "NewReplicaSetAvailable"
    )


class PodRecorder:
    """Replays pod watch events into (active, ready, images) samples after every event."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.samples: list[tuple[int, int]] = []
        self.events: list[tuple[str, str, str]] = []
        listed = core.list_namespaced_pod(namespace)
        self._pods: dict[str, Any] = {p.metadata.name: p for p in listed.items}
        rv = listed.metadata.resource_version
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(core, namespace, rv), daemon=True)
        self._thread.start()

    def _run(self, core: client.CoreV1Api, namespace: str, rv: str) -> None:
        with contextlib.suppress(Exception):  # the stream ends abruptly when the test is over
            self._record(core, namespace, rv)

    def _record(self, core: client.CoreV1Api, namespace: str, rv: str) -> None:
        for event in self._watch.stream(
            core.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=30
        ):
            pod = event["object"]
            image = pod.spec.containers[0].image
            self.events.append((event["type"], pod.metadata.name, image))
            if event["type"] == "DELETED":
                self._pods.pop(pod.metadata.name, None)
            else:
                self._pods[pod.metadata.name] = pod
            active = [p for p in self._pods.values() if p.metadata.deletion_timestamp is None]
            ready = [
                p
                for p in active
                if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            ]
            self.samples.append((len(active), len(ready)))

    def stop(self) -> None:
        self._watch.stop()
        self._thread.join(timeout=0.5)


def start_rollout(
    kubesim: KubesimHandle, api: Any, namespace: str, body: dict[str, Any]
) -> PodRecorder:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, body)
    wait_for(lambda: rolled_out(apps, body["metadata"]["name"], namespace), what="first rollout")
    recorder = PodRecorder(core, namespace)
    apps.patch_namespaced_deployment(
        body["metadata"]["name"],
        namespace,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "app", "image": "registry.example/web:2.0"}]}
                }
            }
        },
    )
    return recorder


@pytest.mark.parametrize(
    ("surge", "unavailable", "most", "fewest_ready"),
    [(1, 1, 5, 3), ("50%", 0, 6, 4), ("25%", "25%", 5, 3), (0, 2, 4, 2)],
)
def test_rolling_update_stays_within_max_surge_and_max_unavailable(
    kubesim: KubesimHandle,
    kubesim_api: Any,
    kubesim_namespace: str,
    surge: Any,
    unavailable: Any,
    most: int,
    fewest_ready: int,
) -> None:
    strategy = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }
    apps = client.AppsV1Api(kubesim_api)
    with kubesim.settings(startup_delay=0.2):
        recorder = start_rollout(
            kubesim,
            kubesim_api,
            kubesim_namespace,
            deployment("roll", replicas=4, strategy=strategy),
        )
        wait_for(lambda: rolled_out(apps, "roll", kubesim_namespace), what="second rollout")
        wait_for(
            lambda: (
                len(client.CoreV1Api(kubesim_api).list_namespaced_pod(kubesim_namespace).items) == 4
            ),
            what="old pods gone",
        )
    recorder.stop()
    assert recorder.samples, "no pod events recorded"
    assert max(active for active, _ in recorder.samples) <= most
    assert min(ready for _, ready in recorder.samples) >= fewest_ready
    assert any(image.endswith(":2.0") for _, _, image in recorder.events)
    pods = client.CoreV1Api(kubesim_api).list_namespaced_pod(kubesim_namespace).items
    assert {p.spec.containers[0].image for p in pods} == {"registry.example/web:2.0"}


def test_a_rollout_keeps_revisions_on_replicasets(kubesim_api: Any, kubesim_namespace: str) -> None:
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_deployment(kubesim_namespace, deployment("rev", replicas=2))
    wait_for(lambda: rolled_out(apps, "rev", kubesim_namespace))
    apps.patch_namespaced_deployment(
        "rev",
        kubesim_namespace,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "app", "image": "registry.example/web:2.0"}]}
                }
            }
        },
    )
    wait_for(lambda: rolled_out(apps, "rev", kubesim_namespace))
    sets = apps.list_namespaced_replica_set(kubesim_namespace).items
    revisions = {rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs for rs in sets}
    assert set(revisions) == {"1", "2"}
    new = revisions["2"]
    assert new.spec.replicas == 2
    assert revisions["1"].spec.replicas == 0
    pod_hash = new.metadata.labels["pod-template-hash"]
    assert new.metadata.name == f"rev-{pod_hash}"
    assert new.spec.selector.match_labels == {"app": "rev", "pod-template-hash": pod_hash}
    owner = new.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("Deployment", "rev", True)
    status = apps.read_namespaced_deployment("rev", kubesim_namespace).status
    assert (
        status.replicas,
        status.updated_replicas,
        status.ready_replicas,
        status.available_replicas,
        status.unavailable_replicas,
    ) == (2, 2, 2, 2, None)
    conditions = {c.type: (c.status, c.reason) for c in status.conditions}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }


def test_recreate_removes_every_old_pod_before_creating_new_ones(
    kubesim: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    apps = client.AppsV1Api(kubesim_api)
    with kubesim.settings(startup_delay=0.1, stop_delay=0.2):
        recorder = start_rollout(
            kubesim,
            kubesim_api,
            kubesim_namespace,
            deployment("rec", replicas=3, strategy={"type": "Recreate"}),
        )
        wait_for(lambda: rolled_out(apps, "rec", kubesim_namespace))
    recorder.stop()
    first_new = next(
        i
        for i, (kind, _, image) in enumerate(recorder.events)
        if kind == "ADDED" and image.endswith(":2.0")
    )
    old_deleted = [
        i
        for i, (kind, _, image) in enumerate(recorder.events)
        if kind == "DELETED" and image.endswith(":1.0")
    ]
    assert len(old_deleted) == 3
    assert max(old_deleted) < first_new


def test_the_scale_subresource_reads_and_writes_replicas(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_deployment(kubesim_namespace, deployment("sc", replicas=1))
    scale = apps.read_namespaced_deployment_scale("sc", kubesim_namespace)
    assert isinstance(scale, client.V1Scale)
    assert scale.spec.replicas == 1
    apps.patch_namespaced_deployment_scale("sc", kubesim_namespace, {"spec": {"replicas": 3}})
    wait_for(
        lambda: apps.read_namespaced_deployment("sc", kubesim_namespace).status.ready_replicas == 3
    )
    scale = apps.read_namespaced_deployment_scale("sc", kubesim_namespace)
    scale.spec.replicas = 2
    apps.replace_namespaced_deployment_scale("sc", kubesim_namespace, scale)
    wait_for(
        lambda: apps.read_namespaced_deployment_scale("sc", kubesim_namespace).status.replicas == 2
    )
    assert (
        apps.read_namespaced_deployment_scale("sc", kubesim_namespace).status.selector == "app=sc"
    )


def test_a_deleted_pod_is_replaced(kubesim_api: Any, kubesim_namespace: str) -> None:
    apps, core = client.AppsV1Api(kubesim_api), client.CoreV1Api(kubesim_api)
    apps.create_namespaced_deployment(kubesim_namespace, deployment("heal", replicas=2))
    wait_for(lambda: rolled_out(apps, "heal", kubesim_namespace))
    victim = core.list_namespaced_pod(kubesim_namespace).items[0].metadata.name
    core.delete_namespaced_pod(victim, kubesim_namespace)

    def replaced() -> bool:
        names = [
            p.metadata.name
            for p in core.list_namespaced_pod(kubesim_namespace).items
            if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
        ]
        return len(names) == 2 and victim not in names

    wait_for(replaced, what="a replacement pod")
    reasons = {e.reason for e in core.list_namespaced_event(kubesim_namespace).items}
    assert {
        "SuccessfulCreate",
        "Scheduled",
        "Pulled",
        "Started",
        "Killing",
        "ScalingReplicaSet",
    } <= reasons


@pytest.mark.parametrize("propagation", ["Background", "Foreground"])
def test_deleting_a_deployment_cascades_to_replicasets_and_pods(
    kubesim_api: Any, kubesim_namespace: str, propagation: str
) -> None:
    apps, core = client.AppsV1Api(kubesim_api), client.CoreV1Api(kubesim_api)
    apps.create_namespaced_deployment(kubesim_namespace, deployment("gone", replicas=3))
    wait_for(lambda: rolled_out(apps, "gone", kubesim_namespace))
    apps.delete_namespaced_deployment("gone", kubesim_namespace, propagation_policy=propagation)
    wait_for(lambda: not apps.list_namespaced_replica_set(kubesim_namespace).items, what="rs gone")
    wait_for(lambda: not core.list_namespaced_pod(kubesim_namespace).items, what="pods gone")
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment("gone", kubesim_namespace)


def test_orphan_deletion_keeps_the_replicaset(kubesim_api: Any, kubesim_namespace: str) -> None:
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_deployment(kubesim_namespace, deployment("orphan", replicas=1))
    wait_for(lambda: rolled_out(apps, "orphan", kubesim_namespace))
    apps.delete_namespaced_deployment("orphan", kubesim_namespace, propagation_policy="Orphan")
    sets = apps.list_namespaced_replica_set(kubesim_namespace).items
    assert len(sets) == 1
    assert not sets[0].metadata.owner_references


def test_pods_report_a_full_running_status(kubesim_api: Any, kubesim_namespace: str) -> None:
    apps, core = client.AppsV1Api(kubesim_api), client.CoreV1Api(kubesim_api)
    apps.create_namespaced_deployment(kubesim_namespace, deployment("st", replicas=1))
    wait_for(lambda: rolled_out(apps, "st", kubesim_namespace))
    pod = core.list_namespaced_pod(kubesim_namespace).items[0]
    status = pod.status
    assert status.phase == "Running"
    conditions = {c.type: c.status for c in status.conditions}
    assert (
        conditions.items()
        >= {
            "PodScheduled": "True",
            "Initialized": "True",
            "ContainersReady": "True",
            "Ready": "True",
        }.items()
    )
    cs = status.container_statuses[0]
    assert cs.ready
    assert cs.started
    assert cs.restart_count == 0
    assert cs.state.running.started_at is not None
    assert cs.image == "registry.example/web:1.0"
    assert cs.image_id.startswith("registry.example/web@sha256:")
    assert cs.container_id.startswith("containerd://")
    assert status.pod_ip
    assert status.host_ip
    assert status.start_time
    assert pod.spec.node_name == "kubesim-node-1"
    assert pod.metadata.labels["pod-template-hash"]


def test_pods_go_through_pending_and_container_creating(
    kubesim: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    core = client.CoreV1Api(kubesim_api)
    with kubesim.settings(startup_delay=0.6):
        core.create_namespaced_pod(
            kubesim_namespace,
            {
                "metadata": {"name": "slowpoke"},
                "spec": {"containers": [{"name": "app", "image": "registry.example/web:1.0"}]},
            },
        )
        pending = wait_for(
            lambda: (
                core.read_namespaced_pod("slowpoke", kubesim_namespace).status
                if core.read_namespaced_pod("slowpoke", kubesim_namespace).status.container_statuses
                else None
            )
        )
        assert pending.phase == "Pending"
        assert pending.container_statuses[0].state.waiting.reason == "ContainerCreating"
        wait_for(
            lambda: (
                core.read_namespaced_pod("slowpoke", kubesim_namespace).status.phase == "Running"
            ),
            timeout=5,
        )


def test_rolling_back_reuses_the_old_replicaset_as_a_new_revision(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_deployment(kubesim_namespace, deployment("back", replicas=1))
    wait_for(lambda: rolled_out(apps, "back", kubesim_namespace))
    for image in ("registry.example/web:2.0", "registry.example/web:1.0"):
        container = {"name": "app", "image": image}
        # kubectl sends `creationTimestamp: null` inside templates; it must not count as a change.
        template = {"metadata": {"creationTimestamp": None}, "spec": {"containers": [container]}}
        apps.patch_namespaced_deployment(
            "back", kubesim_namespace, {"spec": {"template": template}}
        )
        wait_for(lambda: rolled_out(apps, "back", kubesim_namespace))
    sets = apps.list_namespaced_replica_set(kubesim_namespace).items
    assert len(sets) == 2
    active = next(rs for rs in sets if rs.spec.replicas == 1)
    assert active.spec.template.spec.containers[0].image == "registry.example/web:1.0"
    assert active.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
