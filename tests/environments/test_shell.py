"""The web shell socket: refusals, bash with a fallback to sh, the 403 of a limited token,
the idle timeout, and the history of every session."""

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from environments import kube
from environments.models import Environment
from history.models import AuditEvent
from kubesim.testing import KubesimHandle
from permissions.services import grant
from permissions.verbs import Verb
from tests.environments.sockets import communicator, connect_code, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _pod(environment: Environment, service: str = "web") -> str:
    items, _ = kube.list_objects(
        environment.cluster,
        "Pod",
        environment.namespace,
        label_selector=f"apollo.io/service={service}",
    )
    return str(items[0]["metadata"]["name"])


async def _running(user: User, environment: Environment, **extra: Any) -> str:
    await sync_to_async(deployed)(user, environment, "web", replicas=1, **extra)
    return await asyncio.to_thread(_pod, environment)


def _path(environment: Environment, pod: str) -> str:
    return f"/ws/environments/{environment.name}/pods/{pod}/shell/"


async def _type(socket: WebsocketCommunicator, text: str) -> str:
    await socket.send_json_to({"type": "stdin", "data": text})
    out = ""
    while True:
        message = await socket.receive_json_from(timeout=30)
        out += str(message.get("data", ""))
        if "hello" in out.split(text.strip(), 1)[-1]:
            return out


async def test_an_anonymous_shell_is_refused(alice: User, staging: Environment) -> None:
    pod = await _running(alice, staging)
    assert await connect_code(_path(staging, pod)) == (False, 4401)


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
async def test_personas_without_exec_are_refused(
    personas: dict[str, User], persona: str, staging: Environment
) -> None:
    pod = await _running(personas["alice"], staging)
    assert await connect_code(_path(staging, pod), personas[persona]) == (False, 4403)


async def test_an_unknown_pod_is_refused(alice: User, staging: Environment) -> None:
    assert await connect_code(_path(staging, "nope"), alice) == (False, 4404)


async def test_bob_with_an_exec_grant_runs_echo_in_bash_and_history_has_the_session(
    bob: User, staging: Environment
) -> None:
    await sync_to_async(grant)(actor=None, user=bob, verbs=[Verb.EXEC], availability="staging")
    pod = await _running(bob, staging)
    socket = await communicator(_path(staging, pod), bob)
    assert (await socket.connect(timeout=10))[0]
    started = await receive_until(socket, lambda m: m["type"] == "started")
    assert started["command"] == "/bin/bash"
    await socket.send_json_to({"type": "resize", "cols": 120, "rows": 40})
    assert "hello" in await _type(socket, "echo hello\r")
    await socket.send_json_to({"type": "stdin", "data": "exit\r"})
    await receive_until(socket, lambda m: m["type"] == "exit")
    await socket.disconnect()
    events: list[AuditEvent] = await sync_to_async(
        lambda: list(AuditEvent.objects.filter(action__startswith="shell.").order_by("id"))
    )()
    assert [e.action for e in events] == ["shell.opened", "shell.closed"]
    closed = events[1].data
    assert closed["pod"] == pod
    assert closed["container"] == "app"
    assert closed["started_at"] <= closed["ended_at"]
    assert events[0].actor_name == "bob"


async def test_an_image_without_bash_gets_sh(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    await sync_to_async(deployed)(alice, staging, "tiny-alpine", replicas=1)
    pod = await asyncio.to_thread(_pod, staging, "tiny-alpine")
    socket = await communicator(_path(staging, pod), alice)
    assert (await socket.connect(timeout=10))[0]
    started = await receive_until(socket, lambda m: m["type"] in ("started", "error"))
    assert started == {"type": "started", "command": "sh"}
    assert "hello" in await _type(socket, "echo hello\r")
    await socket.disconnect()


async def test_a_cluster_token_without_pods_exec_shows_a_clear_message(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    pod = await _running(alice, staging)

    def limit() -> None:
        staging.cluster.set_token(kubesim.limited_token)
        staging.cluster.save()

    await sync_to_async(limit)()
    socket = await communicator(_path(staging, pod), alice)
    assert (await socket.connect(timeout=10))[0]
    error = await receive_until(socket, lambda m: m["type"] == "error")
    assert "may not create pods/exec" in error["message"]
    assert "403" in error["message"]
    output = await socket.receive_output(timeout=30)
    assert output["type"] == "websocket.close"
    await socket.disconnect()


async def test_an_idle_shell_is_closed(alice: User, staging: Environment, settings: Any) -> None:
    settings.APOLLO_SHELL_IDLE_SECONDS = 1
    pod = await _running(alice, staging)
    socket = await communicator(_path(staging, pod), alice)
    assert (await socket.connect(timeout=10))[0]
    ended = await receive_until(socket, lambda m: m["type"] == "exit", timeout=10)
    assert "without input" in ended["message"]
    await socket.disconnect()
