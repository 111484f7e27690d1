"""The batch page's socket, ws/deployments/batch/<batch>/: who may connect, the rows it sends
(with what each persona may do), and a new state when a deployment of the batch changes."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from django.contrib.auth.models import User
from django.test import override_settings

from deployments.models import Deployment, Group
from deployments.services.deploy import cancel_deployment, request_deployment
from tests import factories
from tests.conftest import login
from tests.environments.sockets import communicator, connect_code, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def _batch(user: User) -> tuple[uuid.UUID, list[Deployment]]:
    stage = factories.make_environment("stage-1", availability="staging")
    ingest = factories.make_service("ingest", deployed_per_group=True)
    version = factories.make_version(ingest)
    batch = uuid.uuid4()
    deployments = []
    for name in ("eu", "us"):
        group = Group.objects.create(service=ingest, environment=stage, name=name)
        outcome = request_deployment(
            user=user,
            service=ingest,
            environment=stage,
            version=version,
            group=group,
            batch=batch,
        )
        assert outcome.deployment is not None, outcome.reason
        deployments.append(outcome.deployment)
    return batch, deployments


def _path(batch: uuid.UUID) -> str:
    return f"/ws/deployments/batch/{batch}/"


async def test_anonymous_and_unknown_batches_are_refused(bob: User) -> None:
    batch, _ = await sync_to_async(_batch)(bob)
    assert await connect_code(_path(batch)) == (False, 4401)
    assert await connect_code(_path(uuid.uuid4()), bob) == (False, 4404)


@pytest.mark.parametrize(("persona", "may_cancel"), [("bob", True), ("carol", False)])
async def test_every_persona_who_may_view_sees_the_rows_with_what_they_may_do(
    personas: dict[str, User], persona: str, may_cancel: bool
) -> None:
    batch, deployments = await sync_to_async(_batch)(personas["bob"])
    socket = await communicator(_path(batch), personas[persona])
    assert (await socket.connect(timeout=10))[0]
    state = await socket.receive_json_from(timeout=10)
    assert state["type"] == "batch.state"
    assert [(r["id"], r["group"], r["status"]) for r in state["rows"]] == [
        (deployments[0].pk, "eu", "PENDING"),
        (deployments[1].pk, "us", "PENDING"),
    ]
    assert all(r["can_cancel"] is may_cancel for r in state["rows"])
    assert state["summary"] == {"PENDING": 2}
    # The markup comes rendered from the page's partials: the browser swaps it in.
    assert state["summary_html"] == (
        '<span class="badge status-pending" data-status="PENDING">2 pending</span> '
    )
    assert state["rows"][0]["badge_html"] == (
        '<span class="badge status-pending" data-status="PENDING">Pending</span>\n'
    )
    await socket.disconnect()


async def test_mallory_who_may_view_none_of_the_rows_is_closed_with_4404(
    bob: User, mallory: User
) -> None:
    batch, _ = await sync_to_async(_batch)(bob)
    assert await connect_code(_path(batch), mallory) == (False, 4404)


async def test_a_change_of_one_deployment_sends_the_rows_again(bob: User) -> None:
    batch, deployments = await sync_to_async(_batch)(bob)
    socket = await communicator(_path(batch), bob)
    assert (await socket.connect(timeout=10))[0]
    await socket.receive_json_from(timeout=10)
    await sync_to_async(cancel_deployment)(user=bob, deployment=deployments[0])

    def eu_cancelled(message: dict[str, Any]) -> bool:
        statuses = {r["group"]: r["status"] for r in message["rows"]}
        return statuses == {"eu": "CANCELED", "us": "PENDING"}

    state = await receive_until(socket, eu_cancelled)
    assert state["summary"] == {"CANCELED": 1, "PENDING": 1}
    await socket.disconnect()


class SharedLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """Stands in for Redis, a layer the worker's process shares: the consumer then follows
    published changes only (no database follower, as for the in-memory layer). Before the
    first group it joins, `before_join` runs: a change that lands between the consumer's first
    read and its joining the groups, whose publish reaches nobody."""

    before_join: ClassVar[Callable[[], Awaitable[None]] | None] = None

    async def group_add(self, group: str, channel: str) -> None:
        hook, SharedLayer.before_join = SharedLayer.before_join, None
        if hook is not None:
            await hook()
        await super().group_add(group, channel)


async def test_a_change_published_as_the_socket_opens_still_reaches_the_page(bob: User) -> None:
    """CI, 2026-12-01: a batch page stayed on "Started" for a deployment whose verdict was
    published while its socket was opening (the browser journey of two services)."""
    batch, deployments = await sync_to_async(_batch)(bob)

    async def verdict_in_the_window() -> None:
        await sync_to_async(cancel_deployment)(user=bob, deployment=deployments[0])

    SharedLayer.before_join = verdict_in_the_window
    shared = {"default": {"BACKEND": f"{__name__}.SharedLayer"}}
    try:
        with override_settings(CHANNEL_LAYERS=shared):
            socket = await communicator(_path(batch), bob)
            assert (await socket.connect(timeout=10))[0]
            first = await socket.receive_json_from(timeout=10)
            # Read before the change landed, and the change's own publish reached nobody.
            assert {r["group"]: r["status"] for r in first["rows"]} == {
                "eu": "PENDING",
                "us": "PENDING",
            }

            def eu_cancelled(message: dict[str, Any]) -> bool:
                statuses = {r["group"]: r["status"] for r in message["rows"]}
                return statuses == {"eu": "CANCELED", "us": "PENDING"}

            await receive_until(socket, eu_cancelled, timeout=10)
            await socket.disconnect()
    finally:
        SharedLayer.before_join = None


def test_the_batch_page_points_at_its_socket(bob: User) -> None:
    batch, _ = _batch(bob)
    page = login(bob).get(f"/deployments/batch/{batch}/").content.decode()
    assert f'data-ws="/ws/deployments/batch/{batch}/"' in page
