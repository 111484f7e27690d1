"""The simulated nodes of cluster/ (cluster/nodes.go) as a client sees them through the real API
server: image pulls that fail, crash loops that back off longer each time, readiness after the
probe's initial delay, and the kubelet's Events.

Runs with APOLLO_TEST_CLUSTER=kubernetes (cluster/ci.sh); skipped on kubesim."""

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.cluster import control_plane

pytestmark = pytest.mark.skipif(
    control_plane.selected() != "kubernetes", reason="needs APOLLO_TEST_CLUSTER=kubernetes"
)


def _pod(name: str, image: str, **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": image, **container}]},
    }


def _until(read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last: {value}")
        time.sleep(0.05)


def _waiting(pod: Any) -> str:
    statuses = pod.status.container_statuses or []
    state = statuses[0].state if statuses else None
    return str(state.waiting.reason) if state and state.waiting else ""


def _duration(text: str) -> float:
    """A Go duration as the kubelet prints it: 300ms, 1.2s, 1m20s."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|s|m|h)", text))


@pytest.fixture
def core(kubesim: control_plane.ControlPlaneHandle, kubesim_namespace: str) -> Iterator[Any]:
    """The core API, once the new namespace has its default ServiceAccount: the real admission
    refuses pods until the service-account controller has created it."""
    api = kubesim.api_client()
    core = client.CoreV1Api(api)
    _until(
        lambda: core.list_namespaced_service_account(kubesim_namespace).items,
        lambda accounts: any(a.metadata.name == "default" for a in accounts),
    )
    yield core
    api.close()


def test_an_unknown_image_goes_err_image_pull_then_image_pull_back_off_with_events(
    core: Any, kubesim_namespace: str
) -> None:
    image = "registry.example.com/shop/missing-thing:1"
    core.create_namespaced_pod(kubesim_namespace, _pod("ghost", image))

    def read() -> Any:
        return core.read_namespaced_pod("ghost", kubesim_namespace)

    _until(read, lambda pod: _waiting(pod) == "ErrImagePull")
    pod = _until(read, lambda pod: _waiting(pod) == "ImagePullBackOff")
    assert pod.spec.node_name.startswith("apollo-node-")
    assert pod.status.phase == "Pending"
    events = core.list_namespaced_event(
        kubesim_namespace, field_selector="involvedObject.name=ghost"
    ).items
    messages = {(e.reason, e.message) for e in events}
    assert ("Failed", "Error: ErrImagePull") in messages
    assert ("Failed", "Error: ImagePullBackOff") in messages
    assert ("BackOff", f'Back-off pulling image "{image}"') in messages
    assert any(
        r == "Failed" and m.startswith(f'Failed to pull image "{image}"') for r, m in messages
    )
    assert {e.reporting_component or e.source.component for e in events} >= {
        "kubelet",
        "default-scheduler",
    }


def test_a_crash_loop_backs_off_longer_each_time_with_the_exit_code(
    core: Any, kubesim_namespace: str, kubesim: control_plane.ControlPlaneHandle
) -> None:
    image = f"registry.example.com/shop/crasher:{kubesim_namespace}"
    kubesim.register_image(image, "crashloop", seconds=0.05, exit_code=3)
    core.create_namespaced_pod(kubesim_namespace, _pod("crasher", image))
    back_offs: list[str] = []

    def read() -> Any:
        pod = core.read_namespaced_pod("crasher", kubesim_namespace)
        status = (pod.status.container_statuses or [None])[0]
        waiting = status.state.waiting if status else None
        if waiting and waiting.reason == "CrashLoopBackOff" and waiting.message not in back_offs:
            back_offs.append(waiting.message)
        return pod

    pod = _until(read, lambda pod: len(back_offs) >= 3)
    status = pod.status.container_statuses[0]
    assert status.restart_count >= 3
    assert status.last_state.terminated.exit_code == 3
    assert status.last_state.terminated.reason == "Error"
    assert pod.status.phase == "Running"
    seconds = [_duration(m.split()[1]) for m in back_offs]
    assert seconds == sorted(seconds), back_offs
    assert len(set(seconds)) == len(seconds), back_offs


def test_readiness_waits_for_the_readiness_probes_initial_delay(
    core: Any, kubesim_namespace: str
) -> None:
    probe = {"exec": {"command": ["true"]}, "initialDelaySeconds": 2}
    core.create_namespaced_pod(
        kubesim_namespace,
        _pod("patient", "registry.example.com/shop/patient:1", readinessProbe=probe),
    )

    def read() -> Any:
        return core.read_namespaced_pod("patient", kubesim_namespace)

    _until(read, lambda pod: pod.status.phase == "Running")
    running_at = time.monotonic()
    pod = read()
    assert not pod.status.container_statuses[0].ready
    _until(read, lambda pod: pod.status.container_statuses[0].ready)
    assert time.monotonic() - running_at >= 1.5
    ready = {c.type: c.status for c in read().status.conditions}
    assert ready["Ready"] == "True"
    assert ready["ContainersReady"] == "True"
