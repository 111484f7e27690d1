"""A web shell session while it runs: a resize reaches the terminal in the pod, and a user who
loses the exec right while connected is refused at the next keystroke."""

import asyncio
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from environments import kube
from environments.live import shell
from environments.models import Environment
from history.models import AuditEvent
from permissions.services import grant, revoke_grant
from permissions.verbs import Verb
from tests.environments.sockets import communicator, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _pod(environment: Environment) -> str:
    items, _ = kube.list_objects(
        environment.cluster, "Pod", environment.namespace, label_selector="apollo.io/service=web"
    )
    return str(items[0]["metadata"]["name"])


async def _open(user: User, environment: Environment) -> WebsocketCommunicator:
    await sync_to_async(deployed)(user, environment, "web", replicas=1)
    pod = await asyncio.to_thread(_pod, environment)
    socket = await communicator(f"/ws/environments/{environment.name}/pods/{pod}/shell/", user)
    assert (await socket.connect(timeout=10))[0]
    await receive_until(socket, lambda m: m["type"] == "started")
    return socket


async def _output_until(socket: WebsocketCommunicator, pattern: str, timeout: float = 10) -> str:
    """Terminal output (stdout messages joined) until it matches `pattern`."""
    out = ""

    def check(message: dict[str, Any]) -> bool:
        nonlocal out
        out += str(message.get("data", ""))
        return re.search(pattern, out) is not None

    await receive_until(socket, check, timeout=timeout)
    return out


async def _messages_until_closed(socket: WebsocketCommunicator) -> tuple[list[Any], int]:
    """Every JSON message until the server closes the socket, and the close code."""
    import json

    messages: list[Any] = []
    while True:
        output = await socket.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return messages, int(output.get("code", 1000))
        messages.append(json.loads(output["text"]))


async def _stty_size(socket: WebsocketCommunicator) -> tuple[int, int]:
    await socket.send_json_to({"type": "stdin", "data": "stty size\r"})
    out = await _output_until(socket, r"stty size\r\n(\d+) (\d+)\r\n")
    found = re.search(r"stty size\r\n(\d+) (\d+)\r\n", out)
    assert found is not None
    return int(found.group(1)), int(found.group(2))


# A real kubelet receives resize and stdin on separate streams, whose order it does not keep.
@pytest.mark.kubesim_only
async def test_a_resize_changes_the_terminal_size_inside_the_pod(
    alice: User, staging: Environment
) -> None:
    socket = await _open(alice, staging)
    assert await _stty_size(socket) == (24, 80)  # the terminal's size before any resize
    await socket.send_json_to({"type": "resize", "cols": 132, "rows": 43})
    assert await _stty_size(socket) == (43, 132)
    await socket.send_json_to({"type": "resize", "cols": 100, "rows": 30})
    await socket.send_json_to({"type": "stdin", "data": "tput cols; tput lines\r"})
    assert "100\r\n30\r\n" in await _output_until(socket, r"100\r\n30\r\n")
    await socket.disconnect()


@pytest.mark.kubesim_only  # resize and stdin: see above
async def test_an_out_of_range_resize_is_ignored(alice: User, staging: Environment) -> None:
    socket = await _open(alice, staging)
    await socket.send_json_to({"type": "resize", "cols": 120, "rows": 40})
    for bad in ({"cols": 0, "rows": 40}, {"cols": 9999, "rows": 40}, {"cols": "80", "rows": 4}):
        await socket.send_json_to({"type": "resize", **bad})
    assert await _stty_size(socket) == (40, 120)
    await socket.disconnect()


async def test_a_revoked_exec_grant_refuses_the_next_keystroke_and_ends_the_session(
    bob: User, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shell, "RECHECK_SECONDS", 0.0)  # ask the gate on every keystroke
    exec_grant = await sync_to_async(grant)(
        actor=None, user=bob, verbs=[Verb.EXEC], availability="staging"
    )
    socket = await _open(bob, staging)
    await socket.send_json_to({"type": "stdin", "data": "echo before\r"})
    await _output_until(socket, r"echo before\r\nbefore\r\n")
    await sync_to_async(revoke_grant)(actor=None, grant=exec_grant)
    await socket.send_json_to({"type": "stdin", "data": "echo after\r"})
    messages, code = await _messages_until_closed(socket)
    assert {"type": "error", "message": "You may no longer exec."} in messages
    typed = "".join(str(m.get("data", "")) for m in messages if m["type"] == "stdout")
    assert "after" not in typed  # the keystrokes never reached the pod
    assert code == shell.CLOSE_NORMAL
    await socket.disconnect()

    def reasons() -> list[str]:
        events = AuditEvent.objects.filter(action="shell.closed")
        return [str(event.data["reason"]) for event in events]

    assert await sync_to_async(reasons)() == ["exec permission revoked"]


async def test_a_demoted_admin_is_refused_at_the_next_keystroke(
    alice: User, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shell, "RECHECK_SECONDS", 0.0)
    socket = await _open(alice, staging)

    def demote() -> None:
        User.objects.filter(pk=alice.pk).update(is_superuser=False, is_staff=False)

    await sync_to_async(demote)()
    await socket.send_json_to({"type": "stdin", "data": "echo after\r"})
    messages, _ = await _messages_until_closed(socket)
    assert {"type": "error", "message": "You may no longer exec."} in messages
    await socket.disconnect()


async def test_input_within_the_recheck_interval_does_not_ask_the_gate_again(
    bob: User, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interval bounds the gate's cost: a revocation is seen once it has passed, not before.
    monkeypatch.setattr(shell, "RECHECK_SECONDS", 3600.0)
    exec_grant = await sync_to_async(grant)(
        actor=None, user=bob, verbs=[Verb.EXEC], availability="staging"
    )
    socket = await _open(bob, staging)
    await sync_to_async(revoke_grant)(actor=None, grant=exec_grant)
    await socket.send_json_to({"type": "stdin", "data": "echo still\r"})
    await _output_until(socket, r"echo still\r\nstill\r\n")
    monkeypatch.setattr(shell, "RECHECK_SECONDS", 0.0)
    await socket.send_json_to({"type": "stdin", "data": "echo after\r"})
    messages, _ = await _messages_until_closed(socket)
    assert {"type": "error", "message": "You may no longer exec."} in messages
    await socket.disconnect()
