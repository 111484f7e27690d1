"""The status board's one socket (ws/status-board/): it follows every environment the board
shows (a share of each environment's watch while it is open, so health reaches every column),
only what the user may view, and lets go of the watches when it closes."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from environments.live import watcher as live
from environments.models import Environment
from tests import factories
from tests.environments.sockets import communicator, connect_code, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

BOARD = "/ws/status-board/"


def _users(environment_id: int) -> int:
    return live.registry.active().get(environment_id, 0)


async def test_an_anonymous_board_socket_is_refused() -> None:
    assert await connect_code(BOARD) == (False, 4401)


async def test_one_socket_brings_the_health_of_an_environment_nobody_else_watches(
    alice: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    before = _users(staging.pk)
    socket = await communicator(BOARD, alice)
    assert (await socket.connect(timeout=10))[0]
    message = await receive_until(
        socket,
        lambda m: (
            m["environment"] == staging.name
            and any(e["key"] == "web" and e["ready"] == 1 for e in m["services"])
        ),
    )
    assert message["type"] == "environment.board"
    assert message["reachable"]
    assert _users(staging.pk) == before + 1  # this board's share of the watch
    await socket.disconnect()
    assert await asyncio.to_thread(live.wait_for, lambda: _users(staging.pk) == before, 30)


async def test_the_board_socket_follows_only_the_named_environment(
    alice: User, staging: Environment
) -> None:
    other = await sync_to_async(factories.make_environment)("board-other")
    before = _users(other.pk)
    socket = await communicator(f"{BOARD}?environment={staging.name}", alice)
    assert (await socket.connect(timeout=10))[0]
    await receive_until(socket, lambda m: m["environment"] == staging.name)
    assert _users(other.pk) == before
    await socket.disconnect()


async def test_mallory_s_board_socket_follows_nothing(
    alice: User, mallory: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    before = _users(staging.pk)
    socket = await communicator(f"{BOARD}?environment={staging.name}", mallory)
    assert (await socket.connect(timeout=10))[0]
    assert await socket.receive_nothing(timeout=1)
    assert _users(staging.pk) == before
    await socket.disconnect()
