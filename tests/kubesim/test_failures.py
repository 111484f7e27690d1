"""Failure modes the deployer must detect: pull errors, crash loops, never ready, deadlines."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kubesim.testing import KubesimHandle
from tests.kubesim.helpers import deployment, wait_for


def first_pod(core: client.CoreV1Api, namespace: str) -> Any:
    pods = core.list_namespaced_pod(namespace).items
    return pods[0] if pods else None


def waiting_reason(core: client.CoreV1Api, namespace: str) -> str | None:
    pod = first_pod(core, namespace)
    if pod is None or not pod.status.container_statuses:
        return None
    waiting = pod.status.container_statuses[0].state.waiting
    return waiting.reason if waiting else None


def test_a_missing_image_stays_in_image_pull_back_off(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    apps, core = client.AppsV1Api(kubesim_api), client.CoreV1Api(kubesim_api)
    image = "registry.example/shop:missing-0001"
    apps.create_namespaced_deployment(kubesim_namespace, deployment("pull", image, replicas=1))
    wait_for(lambda: waiting_reason(core, kubesim_namespace) == "ErrImagePull", what="ErrImagePull")
    wait_for(lambda: waiting_reason(core, kubesim_namespace) == "ImagePullBackOff")
    pod = first_pod(core, kubesim_namespace)
    assert pod.status.phase == "Pending"
    assert image in pod.status.container_statuses[0].state.waiting.message
    assert not pod.status.container_statuses[0].ready
    events = core.list_namespaced_event(
        kubesim_namespace, field_selector=f"involvedObject.name={pod.metadata.name}"
    ).items
    reasons = {(e.reason, e.type) for e in events}
    assert ("Failed", "Warning") in reasons
    assert ("BackOff", "Normal") in reasons
    failed = [e.message for e in events if e.reason == "Failed"]
    assert any(f'Failed to pull image "{image}"' in m for m in failed)
    pull_failure = next(e for e in events if e.reason == "Failed")
    assert pull_failure.involved_object.field_path == "spec.containers{app}"
    assert pull_failure.source.component == "kubelet"


def test_registering_a_sha_as_missing_makes_it_fail(
    kubesim_faults: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    image = "registry.example/shop:" + "a" * 40
    kubesim_faults.mark_image_missing(image)
    apps, core = client.AppsV1Api(kubesim_api), client.CoreV1Api(kubesim_api)
    apps.create_namespaced_deployment(kubesim_namespace, deployment("sha", image, replicas=1))
    wait_for(
        lambda: waiting_reason(core, kubesim_namespace) in ("ErrImagePull", "ImagePullBackOff")
    )
    # Once the image is pushed, the next pull succeeds.
    kubesim_faults.register_image(image, "ok")
    wait_for(lambda: first_pod(core, kubesim_namespace).status.phase == "Running", timeout=5)


def test_a_strict_registry_only_knows_registered_images(
    kubesim_faults: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    kubesim_faults.set_strict_registry(True)
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(
        kubesim_namespace,
        {
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "image": "registry.example/unknown:1"}]},
        },
    )
    wait_for(lambda: waiting_reason(core, kubesim_namespace) == "ErrImagePull")


def test_a_crashing_container_loops_with_rising_restarts(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    apps, core = client.AppsV1Api(kubesim_api), client.CoreV1Api(kubesim_api)
    apps.create_namespaced_deployment(
        kubesim_namespace, deployment("crash", "registry.example/shop:crashloop", replicas=1)
    )

    def restarted_twice() -> Any:
        pod = first_pod(core, kubesim_namespace)
        statuses = pod.status.container_statuses if pod else None
        return statuses[0] if statuses and statuses[0].restart_count >= 2 else None

    status = wait_for(restarted_twice, timeout=10, what="two restarts")
    assert status.last_state.terminated.exit_code == 1
    assert status.last_state.terminated.reason == "Error"
    wait_for(lambda: waiting_reason(core, kubesim_namespace) == "CrashLoopBackOff")
    pod = first_pod(core, kubesim_namespace)
    logs = core.read_namespaced_pod_log(pod.metadata.name, kubesim_namespace, previous=True)
    assert "exiting with code 1" in logs
    events = core.list_namespaced_event(kubesim_namespace).items
    backoff = [
        e for e in events if e.reason == "BackOff" and "restarting failed container" in e.message
    ]
    assert backoff
    assert backoff[0].type == "Warning"


def test_a_container_can_be_made_to_never_become_ready(
    kubesim_faults: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    image = "registry.example/shop:" + "b" * 40
    kubesim_faults.register_image(image, "notready")
    apps, core = client.AppsV1Api(kubesim_api), client.CoreV1Api(kubesim_api)
    apps.create_namespaced_deployment(kubesim_namespace, deployment("nr", image, replicas=1))
    wait_for(
        lambda: (
            first_pod(core, kubesim_namespace) is not None
            and first_pod(core, kubesim_namespace).status.phase == "Running"
        )
    )
    pod = first_pod(core, kubesim_namespace)
    assert not pod.status.container_statuses[0].ready
    ready = next(c for c in pod.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "ContainersNotReady")
    status = apps.read_namespaced_deployment("nr", kubesim_namespace).status
    assert not status.available_replicas
    assert status.unavailable_replicas == 1


def test_a_slow_image_becomes_ready_late(
    kubesim_faults: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    image = "registry.example/shop:" + "c" * 40
    kubesim_faults.register_image(image, "slow", seconds=0.6)
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(
        kubesim_namespace,
        {"metadata": {"name": "s"}, "spec": {"containers": [{"name": "app", "image": image}]}},
    )
    wait_for(lambda: core.read_namespaced_pod("s", kubesim_namespace).status.phase == "Running")
    assert not core.read_namespaced_pod("s", kubesim_namespace).status.container_statuses[0].ready
    wait_for(
        lambda: core.read_namespaced_pod("s", kubesim_namespace).status.container_statuses[0].ready,
        timeout=3,
    )


def test_a_stuck_rollout_reports_progress_deadline_exceeded(
    kubesim_api: Any, kubesim_namespace: str
) -> None:
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_deployment(
        kubesim_namespace,
        deployment("stuck", "registry.example/shop:missing", replicas=2, progress_deadline=1),
    )

    def progressing() -> Any:
        conditions = apps.read_namespaced_deployment("stuck", kubesim_namespace).status.conditions
        return next((c for c in conditions or [] if c.type == "Progressing"), None)

    condition = wait_for(
        lambda: (c := progressing()) and c.reason == "ProgressDeadlineExceeded" and c,
        timeout=6,
        what="ProgressDeadlineExceeded",
    )
    assert condition.status == "False"
    assert "has timed out progressing" in condition.message
    available = next(
        c
        for c in apps.read_namespaced_deployment("stuck", kubesim_namespace).status.conditions
        if c.type == "Available"
    )
    assert (available.status, available.reason) == ("False", "MinimumReplicasUnavailable")


def test_a_new_rollout_reports_new_replica_set_created_then_progressing(
    kubesim: KubesimHandle, kubesim_api: Any, kubesim_namespace: str
) -> None:
    apps = client.AppsV1Api(kubesim_api)
    reasons: set[str] = set()
    with kubesim.settings(startup_delay=0.5):
        apps.create_namespaced_deployment(kubesim_namespace, deployment("prog", replicas=1))

        def finished() -> bool:
            status = apps.read_namespaced_deployment("prog", kubesim_namespace).status
            for condition in status.conditions or []:
                if condition.type == "Progressing":
                    reasons.add(condition.reason)
                    return bool(condition.reason == "NewReplicaSetAvailable")
            return False

        wait_for(finished, timeout=5, interval=0.02)
    assert reasons & {"NewReplicaSetCreated", "ReplicaSetUpdated"}
