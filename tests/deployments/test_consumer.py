"""The websocket harness: Apollo's real ASGI application, origin check and session auth."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from apollo_site.asgi import application
from deployments import consumers
from deployments.live import broadcast_status
from deployments.models import Deployment
from deployments.status import Status
from tests import factories
from tests.conftest import make_viewer

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1")


def _session_cookie(user: User) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())


def _deployment(user: User) -> Deployment:
    return factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=user,
        status="PENDING",
    )


def _communicator(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=[(b"host", b"127.0.0.1"), *headers])


async def _connect(path: str, *headers: tuple[bytes, bytes]) -> tuple[bool, Any]:
    communicator = _communicator(path, *headers)
    connected, code = await communicator.connect()
    await communicator.disconnect()
    return connected, code


async def test_an_anonymous_socket_is_refused(alice: User) -> None:
    deployment = await sync_to_async(_deployment)(alice)
    connected, code = await _connect(f"/ws/deployments/{deployment.pk}/", ORIGIN)
    assert not connected
    assert code == 4401


async def test_a_socket_from_a_foreign_origin_is_refused(alice: User) -> None:
    deployment = await sync_to_async(_deployment)(alice)
    cookie = await sync_to_async(_session_cookie)(alice)
    connected, _ = await _connect(
        f"/ws/deployments/{deployment.pk}/", (b"origin", b"https://evil.example"), cookie
    )
    assert not connected


async def test_an_unknown_deployment_is_refused(alice: User) -> None:
    cookie = await sync_to_async(_session_cookie)(alice)
    connected, code = await _connect("/ws/deployments/999999/", ORIGIN, cookie)
    assert not connected
    assert code == 4404


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
async def test_a_persona_who_may_view_gets_the_status_then_live_changes(
    personas: dict[str, User], persona: str
) -> None:
    deployment = await sync_to_async(_deployment)(personas["alice"])
    cookie = await sync_to_async(_session_cookie)(personas[persona])
    communicator = _communicator(f"/ws/deployments/{deployment.pk}/", ORIGIN, cookie)
    connected, _ = await communicator.connect()
    assert connected
    first = await communicator.receive_json_from(timeout=30)
    assert first["status"] == "PENDING"
    assert "status-pending" in first["badge_html"]

    def start() -> None:
        deployment.transition_to(Status.STARTED, reason="applying manifests")
        broadcast_status(deployment)

    await sync_to_async(start)()
    update = await communicator.receive_json_from(timeout=30)
    assert update["status"] == "STARTED"
    assert update["status_reason"] == "applying manifests"
    await communicator.disconnect()


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
async def test_without_a_shared_layer_the_page_follows_the_row(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker runs in another process: its changes reach the page through the database."""
    monkeypatch.setattr(consumers, "DB_FOLLOW_SECONDS", 0.05)
    deployment = await sync_to_async(_deployment)(alice)
    cookie = await sync_to_async(_session_cookie)(alice)
    communicator = _communicator(f"/ws/deployments/{deployment.pk}/", ORIGIN, cookie)
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from(timeout=30))["status"] == "PENDING"

    def worker_elsewhere() -> None:
        # What a worker process does: write the row, broadcast nothing this process sees.
        entry = {"at": "2026-11-27T12:00:00+00:00", "source": "worker", "message": "applied"}
        Deployment.objects.filter(pk=deployment.pk).update(timeline=[entry])
        deployment.transition_to(Status.STARTED, reason="following the rollout")

    await sync_to_async(worker_elsewhere)()
    received = [await communicator.receive_json_from(timeout=30) for _ in range(2)]
    # The entry comes with its markup, rendered from the partial the page itself includes.
    html = received[0].pop("html")
    assert html.startswith("<li data-key=")
    assert '<span class="text">applied</span>' in html
    assert received[0] == {
        "type": "deployment.timeline",
        "at": "2026-11-27T12:00:00+00:00",
        "source": "worker",
        "message": "applied",
    }
    assert (received[1]["type"], received[1]["status"]) == ("deployment.status", "STARTED")
    await sync_to_async(deployment.transition_to)(Status.DONE, reason="rollout complete")
    final = await communicator.receive_json_from(timeout=30)
    assert (final["status"], final["status_reason"]) == ("DONE", "rollout complete")
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("persona", "shown"), [("alice", True), ("carol", True), ("viewer", False)]
)
async def test_it_sends_crash_log_lines_only_to_who_may_view_logs(
    personas: dict[str, User], persona: str, shown: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployments.live import broadcast_timeline

    personas["viewer"] = await sync_to_async(make_viewer)()

    monkeypatch.setattr(consumers, "DB_FOLLOW_SECONDS", 0.05)
    deployment = await sync_to_async(_deployment)(personas["alice"])
    cookie = await sync_to_async(_session_cookie)(personas[persona])
    communicator = _communicator(f"/ws/deployments/{deployment.pk}/", ORIGIN, cookie)
    assert (await communicator.connect())[0]
    await communicator.receive_json_from(timeout=30)
    entry = {"at": "2026-11-27T12:00:00+00:00", "source": "logs", "message": "TOKEN=s3cret"}

    def crash() -> None:
        Deployment.objects.filter(pk=deployment.pk).update(timeline=[entry])
        broadcast_timeline(deployment, entry)

    await sync_to_async(crash)()
    received = await communicator.receive_json_from(timeout=30)
    assert received["type"] == "deployment.timeline"
    assert ("TOKEN=s3cret" in received["message"]) is shown
    assert ("TOKEN=s3cret" in received["html"]) is shown  # the rendered entry hides them too
    await communicator.disconnect()
