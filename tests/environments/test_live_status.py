"""The status socket: who may connect, what it shows, one shared watch, resume after 410/end."""

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from environments import kube
from environments.live import watcher as live
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests.conftest import make_viewer
from tests.environments.sockets import communicator, connect_code, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _status(environment: Environment) -> str:
    return f"/ws/environments/{environment.name}/status/"


async def test_an_anonymous_status_socket_is_refused(staging: Environment) -> None:
    assert await connect_code(_status(staging)) == (False, 4401)


async def test_an_unknown_environment_is_refused(alice: User, staging: Environment) -> None:
    assert await connect_code("/ws/environments/nowhere/status/", alice) == (False, 4404)


@pytest.mark.parametrize("persona", ["alice", "bob", "carol", "viewer"])
async def test_every_persona_who_may_view_sees_the_running_pods(
    personas: dict[str, User], persona: str, staging: Environment
) -> None:
    personas["viewer"] = await sync_to_async(make_viewer)()
    await sync_to_async(deployed)(personas["alice"], staging, "web")
    socket = await communicator(_status(staging), personas[persona])
    assert (await socket.connect(timeout=10))[0]
    state = await receive_until(socket, lambda m: "web-" in m["html"] and m["reachable"])
    assert "Release web" in state["html"]
    assert "deployed by alice" in state["html"]
    # Buttons follow the gate: bob may restart and read logs in staging, carol read logs only.
    may_act = persona in ("alice", "bob")
    assert ("Rolling restart" in state["html"]) is may_act
    assert ("Logs</a>" in state["html"]) is (persona != "viewer")
    assert ("Shell</a>" in state["html"]) is (persona == "alice")
    await socket.disconnect()


async def test_a_service_deployed_after_the_socket_opened_shows_to_a_viewer(
    alice: User, carol: User, mallory: User, staging: Environment
) -> None:
    socket = await communicator(_status(staging), carol)
    assert (await socket.connect(timeout=10))[0]
    await sync_to_async(deployed)(alice, staging, "web")
    state = await receive_until(socket, lambda m: "web-" in m["html"] and m["reachable"])
    assert "Release web" in state["html"]
    await socket.disconnect()
    assert await connect_code(_status(staging), mallory) == (False, 4404)


async def test_twenty_viewers_share_one_watch(
    alice: User, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sync_to_async(deployed)(alice, staging, "web")
    calls: list[str] = []
    original_list, original_watch = kube.list_objects, kube.WatchStream

    def counting_list(*args: Any, **kwargs: Any) -> Any:
        calls.append(f"list {args[1]}")
        return original_list(*args, **kwargs)

    class CountingWatch(original_watch):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(f"watch {args[1]}")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(kube, "list_objects", counting_list)
    monkeypatch.setattr(kube, "WatchStream", CountingWatch)
    sockets = [await communicator(_status(staging), alice) for _ in range(20)]
    for socket in sockets:
        assert (await socket.connect(timeout=10))[0]
    for socket in sockets:
        await receive_until(socket, lambda m: "web-" in m["html"])
    # ReplicaSets too: a pod's service comes from its owner chain (environments/owners.py).
    assert sorted(calls) == [
        "list Deployment",
        "list Pod",
        "list ReplicaSet",
        "watch Deployment",
        "watch Pod",
        "watch ReplicaSet",
    ]
    assert live.registry.active().get(staging.pk) == 20
    watcher = live.registry.get(staging.pk)
    for socket in sockets:
        await socket.disconnect()
    assert staging.pk not in live.registry.active()
    assert watcher is not None
    assert watcher.stopped
    await asyncio.to_thread(watcher.join, 5)
    assert not any(thread.is_alive() for thread in watcher._threads)


@pytest.mark.kubesim_only  # ends the server's watches through kubesim's control API
async def test_a_forcibly_ended_watch_is_resumed_by_relisting(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    socket = await communicator(_status(staging), alice)
    assert (await socket.connect(timeout=10))[0]
    await receive_until(socket, lambda m: "web-" in m["html"])
    watcher = live.registry.get(staging.pk)
    assert watcher is not None
    ended = await asyncio.to_thread(kubesim.end_watches)
    assert ended >= 2
    assert await asyncio.to_thread(live.wait_for, lambda: watcher.relists >= 2, 10)
    # Changes after the resume still arrive: scale the Deployment behind Apollo's back.
    await asyncio.to_thread(
        kube.scale_deployment, staging.cluster, staging.namespace, "web", replicas=3
    )
    state = await receive_until(socket, lambda m: m["html"].count('data-pod="web-') == 3)
    assert state["reachable"]
    await socket.disconnect()


async def test_an_unreachable_cluster_is_shown(alice: User, staging: Environment) -> None:
    staging.cluster.api_url = "https://127.0.0.1:1"
    await sync_to_async(staging.cluster.save)()
    socket = await communicator(_status(staging), alice)
    assert (await socket.connect(timeout=10))[0]
    state = await receive_until(socket, lambda m: not m["reachable"])
    assert "Cluster unreachable" in state["html"]
    await socket.disconnect()


async def test_a_service_that_runs_another_sha_is_flagged_as_drifted(
    alice: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    patch = {"spec": {"template": {"metadata": {"labels": {"apollo.io/commit-sha": "f" * 40}}}}}

    def drift() -> None:
        from kubernetes import client

        apps = client.AppsV1Api(kube.api_client(staging.cluster))
        apps.patch_namespaced_deployment("web", staging.namespace, patch)

    await asyncio.to_thread(drift)
    socket = await communicator(_status(staging), alice)
    assert (await socket.connect(timeout=10))[0]
    state = await receive_until(socket, lambda m: "drifted" in m["html"])
    assert "ffffffffffff" in state["html"]
    await socket.disconnect()
