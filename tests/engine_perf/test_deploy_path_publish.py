"""A deployment's live updates (#16): the verdict's timeline entries not sent yet, then its
status, reach the page in order, sent in one round through the channel layer (live.broadcast);
the claim's STARTED goes in the same round as the first apply's "sending apply" entries (each
round is an event loop and a thread of async_to_sync)."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from apollo_site.asgi import application
from apollo_site.ops import publish
from deployments import consumers, live
from deployments.models import Deployment
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.kubeenv import deploy, wait_until_terminal

pytestmark = pytest.mark.django_db(transaction=True)


def _page(user: User, deployment: Deployment) -> WebsocketCommunicator:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [
        (b"host", b"127.0.0.1"),
        (b"origin", b"http://127.0.0.1"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    return WebsocketCommunicator(application, f"/ws/deployments/{deployment.pk}/", headers=headers)


def _started(user: User) -> Deployment:
    deployment = factories.make_rollout(user, status="PENDING")
    deployment.transition_to(Status.STARTED, reason="applying manifests")
    return deployment


SERVICE_TEMPLATE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{service}}
spec:
  selector: {app: {{service}}}
  ports:
    - port: 80
"""


@pytest.fixture
def rounds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each round the live updates make through the channel layer: (group, payloads), sent on
    (publish_many called through)."""
    sent: list[tuple[str, list[dict[str, Any]]]] = []
    original = publish.publish_many

    def recording(group: str, messages: list[dict[str, Any]]) -> bool:
        sent.append((group, [m["payload"] for m in messages]))
        return original(group, messages)

    monkeypatch.setattr(live, "publish_many", recording)
    return sent


@pytest.mark.usefixtures("worker")
def test_the_claim_s_started_and_the_first_apply_s_entries_are_one_round(
    bob: User, staging: Environment, rounds: list[tuple[str, list[dict[str, Any]]]]
) -> None:
    service = factories.make_service("oneround", service_template=SERVICE_TEMPLATE)
    deployment = deploy(bob, service, staging, factories.make_version(service)).deployment
    assert deployment is not None
    assert wait_until_terminal(deployment).status == "DONE"
    mine = [payloads for group, payloads in list(rounds) if group == live.group_name(deployment.pk)]
    started = [p for p in mine if any(m.get("status") == "STARTED" for m in p)]
    assert len(started) == 1, mine
    assert started[0][0]["status"] == "STARTED"  # the status first, then what is being sent
    assert sorted(m["message"].split(" (")[0] for m in started[0][1:]) == [
        "sending apply of Deployment/oneround",
        "sending apply of Service/oneround",
    ]
    sending = [m for p in mine for m in p if m.get("message", "").startswith("sending apply")]
    assert len(sending) == 2  # (said once)


async def test_a_verdict_s_entries_then_its_status_reach_the_page_in_order(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page hears only the channel layer here (its database follow would repeat the row).
    monkeypatch.setattr(consumers, "DB_FOLLOW_SECONDS", 3600)
    deployment = await sync_to_async(_started)(alice)
    page = await sync_to_async(_page)(alice, deployment)
    assert (await page.connect())[0]
    assert (await page.receive_json_from(timeout=30))["status"] == "STARTED"
    entries = [
        {"at": "2026-11-30T17:00:00+00:00", "source": "kubernetes", "message": "pod web-1 ready"},
        {"at": "2026-11-30T17:00:01+00:00", "source": "worker", "message": "DONE: complete"},
    ]

    def verdict() -> None:
        deployment.transition_to(Status.DONE, reason="complete")
        live.broadcast(deployment, entries, status=True)

    await sync_to_async(verdict)()
    received: list[dict[str, Any]] = [await page.receive_json_from(timeout=30) for _ in range(3)]
    assert [m["type"] for m in received] == [
        "deployment.timeline",
        "deployment.timeline",
        "deployment.status",
    ]
    assert [m["message"] for m in received[:2]] == ["pod web-1 ready", "DONE: complete"]
    assert (received[2]["status"], received[2]["status_reason"]) == ("DONE", "complete")
    await page.disconnect()


def test_while_the_layer_is_known_down_a_round_is_dropped_and_an_empty_one_is_sent() -> None:
    publish.breaker.failed("deployment.0", ConnectionError("refused"))
    try:
        assert publish.publish_many("deployment.0", [{"type": "deployment.status"}]) is False
        assert publish.publish_many("deployment.0", []) is True
    finally:
        publish.breaker.reset()
