"""End to end: real rollouts on kubesim through the real worker, their messages posted by the
worker's deliverer to a real receiver, signed and in order, while the receiver is down at first."""

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.notifications.delivery import start_deliverer
from deployments.notifications.models import Delivery, Subscription
from deployments.notifications.services import save_subscription
from deployments.notifications.signing import verify
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy, wait_until_terminal
from tests.notifications.receiver import Receiver, running

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
    pytest.mark.kubesim_only,
]
SECRET = "end-to-end-signing-secret"


@pytest.fixture
def deliverer() -> Iterator[None]:
    shutdown = threading.Event()
    thread = start_deliverer(shutdown=shutdown, owner="test-deliverer")
    yield
    shutdown.set()
    thread.join(30)


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_receiver_gets_every_rollouts_messages_signed_and_in_order_once_it_is_up(
    bob: User,
    alice: User,
    staging: Environment,
    kubesim: KubesimHandle,
    settings: Any,
    deliverer: None,
) -> None:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with running() as receiver:
        pass  # down while the rollouts run
    save_subscription(
        actor=alice,
        subscription=Subscription(name="team", kind=Subscription.Kind.WEBHOOK),
        url=receiver.url,
        secret=SECRET,
    )
    good = factories.make_service("notified")
    bad = factories.make_service("notified-ghost")
    bad_version = factories.make_version(bad)
    kubesim.mark_image_missing(bad_version.image)
    first = deploy(bob, good, staging, factories.make_version(good)).deployment
    second = deploy(bob, bad, staging, bad_version).deployment
    assert first is not None
    assert second is not None
    assert wait_until_terminal(first).status == Status.DONE
    assert wait_until_terminal(second).status == Status.FAILED  # not delayed by the receiver
    _wait(lambda: Delivery.objects.filter(attempts__gt=0).exists(), "a failed attempt")
    # Back up: the back-off elapses (instead of being waited for), and everything arrives.
    Delivery.objects.update(next_attempt_at=first.created_at)
    with running(Receiver(port=receiver.port)) as back:
        _wait(lambda: len(back.received) >= 6, "six messages")
    messages = [json.loads(r.body) for r in back.received]
    for request in back.received:
        assert verify(
            secret=SECRET,
            timestamp=int(request.headers["X-Apollo-Timestamp"]),
            body=request.body,
            signature=request.headers["X-Apollo-Signature"],
        )
    for deployment, final in ((first, "done"), (second, "failed")):
        events = [m["event"] for m in messages if m["deployment"]["id"] == deployment.pk]
        assert events == ["requested", "started", final]
    failed = next(m for m in messages if m["event"] == "failed")
    assert "not found" in failed["deployment"]["status_reason"]
    # The deliverer records a delivery after its receiver answered: the sixth message may be
    # in the receiver's hands a moment before its row says so (CI, 2026-12-03). A delivery
    # left undelivered still fails here, after the wait.
    undelivered = Delivery.objects.exclude(state=Delivery.State.DELIVERED)
    _wait(lambda: not undelivered.exists(), "every delivery recorded as delivered")
    assert Delivery.objects.filter(state=Delivery.State.DELIVERED).count() == 6
