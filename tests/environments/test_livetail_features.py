"""LiveTail options against kubesim: timestamps, one container of a multi-container pod, tail=N,
the previous container after a real crash, one group of a service; and a viewer who loses the
right to read logs while the tail is open."""

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from kubernetes import client

from deployments.models import Group, Service
from deployments.services.deploy import request_deployment
from deployments.status import Status
from environments import kube
from environments.live import logs
from environments.models import Environment
from kubesim.testing import KubesimHandle
from permissions.models import Grant
from permissions.services import revoke_grant
from tests import factories
from tests.environments.sockets import communicator, deployed, receive_until
from tests.kubeenv import wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

TWO_CONTAINERS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{service}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{service}}}
  template:
    metadata:
      labels: {app: {{service}}}
    spec:
      containers:
        - name: app
          image: {{image}}
        - name: sidecar
          image: registry.example.com/envoy:1.29
"""
SIDECAR = "registry.example.com/envoy:1.29"  # allowed on the service by the manifest policy


def _path(environment: Environment, query: str) -> str:
    return f"/ws/environments/{environment.name}/logs/?{query}"


def _pods(environment: Environment, selector: str) -> list[str]:
    items, _ = kube.list_objects(
        environment.cluster, "Pod", environment.namespace, label_selector=selector
    )
    return sorted(
        i["metadata"]["name"] for i in items if not i["metadata"].get("deletionTimestamp")
    )


def _core(environment: Environment) -> client.CoreV1Api:
    return client.CoreV1Api(kube.api_client(environment.cluster))


def _full_log(environment: Environment, pod: str, **extra: Any) -> list[tuple[str, str]]:
    """(timestamp, text) of every readable line, straight from the API server."""
    text = _core(environment).read_namespaced_pod_log(
        pod, environment.namespace, timestamps=True, **extra
    )
    return [(stamp, rest) for stamp, _, rest in (line.partition(" ") for line in text.splitlines())]


def _seconds(timestamp: str) -> float:
    seconds, _, fraction = timestamp.rstrip("Z").partition(".")
    whole = datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return whole + float(f"0.{fraction or 0}")


async def _open(path: str, user: User) -> WebsocketCommunicator:
    socket = await communicator(path, user)
    assert (await socket.connect(timeout=10))[0]
    return socket


async def _lines_until(
    socket: WebsocketCommunicator, done: Any, timeout: float = 20
) -> list[list[str]]:
    """Every line received until done(lines so far) is true."""
    lines: list[list[str]] = []

    def check(message: dict[str, Any]) -> bool:
        if message.get("type") == "lines":
            lines.extend(message["lines"])
        return bool(done(lines))

    await receive_until(socket, check, timeout=timeout)
    return lines


async def _until_closed(
    socket: WebsocketCommunicator, timeout: float = 10
) -> tuple[list[Any], int]:
    """Every JSON message until the server closes the socket, and the close code."""
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        output = await socket.receive_output(timeout=max(deadline - time.monotonic(), 0.1))
        if output["type"] == "websocket.close":
            return messages, int(output.get("code", 1000))
        messages.append(json.loads(output["text"]))


# -- options ---------------------------------------------------------------------------------


async def test_every_line_carries_the_timestamp_kubernetes_wrote_for_it(
    bob: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    [pod] = await asyncio.to_thread(_pods, staging, "apollo.io/service=web")
    socket = await _open(_path(staging, "service=web&tail=20"), bob)
    received = await _lines_until(socket, lambda lines: len(lines) >= 30)
    await socket.disconnect()
    log = await asyncio.to_thread(_full_log, staging, pod)
    written = {text: stamp for stamp, text in log}
    for name, stamp, text in received:
        assert name == pod
        assert RFC3339.match(stamp), stamp
        assert not RFC3339.match(text.split(" ", 1)[0])  # the prefix was split off the text
        assert written[text] == stamp
    stamps = [_seconds(stamp) for _, stamp, _ in received]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] - time.time()) < 60


async def test_a_chosen_container_of_a_two_container_pod_is_the_only_one_streamed(
    bob: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(
        bob, staging, "web", deployment_template=TWO_CONTAINERS, allowed_sidecar_images=[SIDECAR]
    )
    [pod] = await asyncio.to_thread(_pods, staging, "apollo.io/service=web")
    for container, other in (("sidecar", "app"), ("app", "sidecar")):
        # tail=5000: the whole log, whose first line names the container that writes it.
        socket = await _open(_path(staging, f"pod={pod}&container={container}&tail=5000"), bob)
        lines = await _lines_until(socket, lambda lines: any("starting" in t for *_, t in lines))
        await socket.disconnect()
        texts = [text for _, _, text in lines]
        assert any(t.startswith(f"INFO  [{pod}] starting {container} (") for t in texts)
        assert not any(f"starting {other} (" in t for t in texts)
    # The service-wide tail takes the container option too.
    socket = await _open(_path(staging, "service=web&container=sidecar&tail=5000"), bob)
    lines = await _lines_until(socket, lambda lines: any("starting" in t for *_, t in lines))
    await socket.disconnect()
    assert any("starting sidecar (registry.example.com/envoy:1.29)" in t for *_, t in lines)
    assert not any("starting app (" in t for *_, t in lines)


async def test_previous_of_a_two_container_pod_asks_for_its_first_container(
    bob: User, staging: Environment
) -> None:
    # Without a container name the API server refuses a pod with several ("a container name
    # must be specified"); Apollo names the first, as following does.
    await sync_to_async(deployed)(
        bob, staging, "web", deployment_template=TWO_CONTAINERS, allowed_sidecar_images=[SIDECAR]
    )
    [pod] = await asyncio.to_thread(_pods, staging, "apollo.io/service=web")
    socket = await _open(_path(staging, f"pod={pod}&previous=1"), bob)
    notices: list[str] = []

    def answered(message: dict[str, Any]) -> bool:
        notices.extend(message.get("notices") or [])
        return any(pod in n for n in notices)

    await receive_until(socket, answered)
    await socket.disconnect()
    assert not any("must be specified" in n for n in notices), notices
    # Nothing restarted yet: the answer is about the first container's missing predecessor.
    assert any('"app"' in n or "end of the previous" in n for n in notices), notices


async def test_tail_n_sends_only_the_last_n_lines_then_follows_without_gaps(
    bob: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    [pod] = await asyncio.to_thread(_pods, staging, "apollo.io/service=web")
    # Let the pod write well over N lines first (kubesim writes 20 a second in tests).
    deadline = time.monotonic() + 20
    while len(await asyncio.to_thread(_full_log, staging, pod)) < 60:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    before = time.time()
    socket = await _open(_path(staging, "service=web&tail=10"), bob)
    first_at = 0.0

    def enough(lines: list[list[str]]) -> bool:
        nonlocal first_at
        if lines and not first_at:
            first_at = time.time()  # the tail was read before its first lines arrived
        return len(lines) >= 40

    received = await _lines_until(socket, enough)
    await socket.disconnect()
    log = await asyncio.to_thread(_full_log, staging, pod)
    texts = [text for _, text in log]
    start = texts.index(received[0][2])
    # What followed the tail is the log itself: no line skipped, none repeated.
    assert [text for _, _, text in received] == texts[start : start + len(received)]
    # The first line sent is the N-th last of the log as it stood when the tail was read.
    written_by = [sum(1 for stamp, _ in log if _seconds(stamp) <= t) for t in (before, first_at)]
    assert written_by[0] - 10 <= start <= written_by[1] - 10
    assert written_by[0] > 50  # so a tail that ignored N would have failed the bound above


async def test_tail_zero_sends_no_old_line(bob: User, staging: Environment) -> None:
    await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    before = time.time()
    socket = await _open(_path(staging, "service=web&tail=0"), bob)
    received = await _lines_until(socket, lambda lines: len(lines) >= 5)
    await socket.disconnect()
    assert not any("starting app" in text for *_, text in received)
    # Each line was written after the request (the stamps are the kubelet's wall clock).
    assert all(_seconds(stamp) > before - 0.5 for _, stamp, _ in received)


def _crashing_pod(environment: Environment, kubesim: KubesimHandle) -> str:
    """A bare pod of service `crashy` whose container exits with code 3 after 4 s, again and
    again (CrashLoopBackOff), as kubesim does for an image registered as crashloop."""
    factories.make_service("crashy")
    image = "registry.example.com/crashy:" + "c" * 40
    kubesim.register_image(image, "crashloop", seconds=4, exit_code=3)
    labels = {"app.kubernetes.io/managed-by": "apollo", "apollo.io/service": "crashy"}
    pod = {
        "metadata": {"name": "crashy-0", "labels": labels},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    _core(environment).create_namespaced_pod(environment.namespace, pod)
    return "crashy-0"


def _restarts(environment: Environment, pod: str) -> tuple[int, bool]:
    """(restartCount, running) of the pod's container."""
    found = kube.read_pod(environment.cluster, environment.namespace, pod)
    assert found is not None
    [status] = found["status"].get("containerStatuses") or [{}]
    return int(status.get("restartCount", 0)), "running" in (status.get("state") or {})


async def test_previous_reads_the_log_of_the_container_that_crashed(
    bob: User, staging: Environment, kubesim_faults: KubesimHandle
) -> None:
    pod = await asyncio.to_thread(_crashing_pod, staging, kubesim_faults)
    for _attempt in range(3):
        # Wait for a restarted container that is running: its predecessor crashed, it has not.
        deadline = time.monotonic() + 30
        while True:
            restarts, running = await asyncio.to_thread(_restarts, staging, pod)
            if restarts >= 1 and running:
                break
            assert time.monotonic() < deadline, "the container never restarted"
            await asyncio.sleep(0.1)
        socket = await _open(_path(staging, f"pod={pod}&previous=1"), bob)
        received: list[list[str]] = []

        def ended(message: dict[str, Any], received: list[list[str]] = received) -> bool:
            received.extend(message.get("lines") or [])
            return any("end of the previous" in n for n in message.get("notices") or [])

        await receive_until(socket, ended)
        await socket.disconnect()
        previous = await asyncio.to_thread(_full_log, staging, pod, previous=True)
        if await asyncio.to_thread(_restarts, staging, pod) == (restarts, True):
            break  # no crash while reading: "previous" was the container that crashed
    texts = [text for _, _, text in received]
    assert texts[0] == f"INFO  [{pod}] starting app (registry.example.com/crashy:{'c' * 40})"
    # It ends with the crash; the running container has not crashed (yet), so this is not it.
    assert texts[-1].startswith(f"FATAL [{pod}] unrecoverable error")
    assert texts[-1].endswith("exiting with code 3")
    assert [text for _, text in previous] == texts


async def test_the_tail_of_one_group_shows_only_the_pods_of_that_group(
    bob: User, alice: User, staging: Environment
) -> None:
    def deploy_groups() -> Service:
        service = factories.make_service("ingest")
        version = factories.make_version(service)
        for name, replicas in (("eu", 2), ("us", 2)):
            group = Group.objects.create(
                service=service, environment=staging, name=name, scaling_factor=replicas
            )
            outcome = request_deployment(
                user=alice, service=service, environment=staging, version=version, group=group
            )
            assert outcome.deployment is not None, outcome.reason
            done = wait_until_terminal(outcome.deployment)
            assert done.status == Status.DONE, done.status_reason
        return service

    await sync_to_async(deploy_groups)()
    eu = await asyncio.to_thread(_pods, staging, "apollo.io/service=ingest,apollo.io/group=eu")
    us = await asyncio.to_thread(_pods, staging, "apollo.io/service=ingest,apollo.io/group=us")
    assert len(eu) == 2
    assert len(us) == 2
    connected_at = time.time()
    socket = await _open(_path(staging, "service=ingest&group=eu&tail=5"), bob)

    def every_eu_pod_is_live(lines: list[list[str]]) -> bool:
        # Each eu pod sent a line written after the tail opened: every stream is running.
        live = {pod for pod, stamp, _ in lines if _seconds(stamp) > connected_at + 1}
        return live >= set(eu)

    lines = await _lines_until(socket, every_eu_pod_is_live)
    await socket.disconnect()
    assert {pod for pod, _, _ in lines} == set(eu)


# -- a revoked right ends the tail --------------------------------------------------------------


async def _bob_tailing(bob: User, staging: Environment) -> WebsocketCommunicator:
    await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    socket = await _open(_path(staging, "service=web&tail=5"), bob)
    await receive_until(socket, lambda m: m.get("type") == "lines" and m["lines"])
    return socket


def _revoke_bobs_grant(bob: User) -> None:
    for grant in Grant.objects.filter(note="persona bob"):
        revoke_grant(actor=None, grant=grant)


async def test_a_tail_is_closed_within_the_recheck_interval_after_the_grant_is_revoked(
    bob: User, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "RECHECK_SECONDS", 0.5)
    socket = await _bob_tailing(bob, staging)
    await sync_to_async(_revoke_bobs_grant)(bob)
    revoked_at = time.monotonic()
    messages, code = await _until_closed(socket)  # without any action from the viewer
    assert code == 4403
    assert time.monotonic() - revoked_at < 5
    assert messages[-1] == {"type": "notice", "text": "You may no longer view these logs."}
    await socket.disconnect()


async def test_a_tail_is_closed_at_the_next_action_after_the_grant_is_revoked(
    bob: User, staging: Environment
) -> None:
    assert logs.RECHECK_SECONDS >= 30  # the periodic check cannot be what closes it here
    socket = await _bob_tailing(bob, staging)
    await sync_to_async(_revoke_bobs_grant)(bob)
    await socket.send_json_to({"action": "pause"})
    messages, code = await _until_closed(socket)
    assert code == 4403
    assert {"type": "notice", "text": "You may no longer view these logs."} in messages


async def test_a_tail_of_a_deactivated_account_is_closed(
    bob: User, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "RECHECK_SECONDS", 0.5)
    socket = await _bob_tailing(bob, staging)
    await sync_to_async(User.objects.filter(pk=bob.pk).update)(is_active=False)
    _, code = await _until_closed(socket)
    assert code == 4403
    await socket.disconnect()
