"""The outbox delivered to a real local receiver: signed, in order, retried, nothing lost."""

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.models import Deployment, Service
from deployments.notifications.delivery import deliver_due, start_deliverer
from deployments.notifications.models import Delivery, Subscription
from deployments.notifications.services import save_subscription
from deployments.notifications.signing import verify
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.notifications.receiver import running

pytestmark = pytest.mark.django_db
SECRET = "a-signing-secret-of-some-length"
OWNER = "test-deliverer"


@pytest.fixture(autouse=True)
def _receiver_allowed(settings: Any) -> None:
    # The receiver listens on loopback, which the SSRF guard refuses unless an admin allows it.
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


def subscribe(alice: User, url: str, **extra: Any) -> Subscription:
    subscription = Subscription(name="hook", kind=Subscription.Kind.WEBHOOK, **extra)
    return save_subscription(actor=alice, subscription=subscription, url=url, secret=SECRET)


def pending(service: Service, environment: Environment, user: User) -> Deployment:
    return factories.make_deployment(
        service=service, environment=environment, deployed_by=user, status=Status.PENDING
    )


def finish(deployment: Deployment) -> None:
    deployment.transition_to(Status.STARTED)
    deployment.transition_to(Status.DONE)


def time_passes() -> None:
    """The back-off elapses (instead of waiting for it)."""
    Delivery.objects.filter(state=Delivery.State.PENDING).update(next_attempt_at=timezone.now())


def events_of(received: list[Any]) -> list[tuple[int, str]]:
    return [(json.loads(r.body)["deployment"]["id"], json.loads(r.body)["event"]) for r in received]


def test_a_webhook_receives_each_status_signed(
    alice: User, checkout: Service, staging: Environment
) -> None:
    with running() as receiver:
        subscribe(alice, receiver.url)
        deployment = pending(checkout, staging, alice)
        finish(deployment)
        assert deliver_due(owner=OWNER) == 2
    assert events_of(receiver.received) == [(deployment.pk, "started"), (deployment.pk, "done")]
    for request in receiver.received:
        stamp = int(request.headers["X-Apollo-Timestamp"])
        assert abs(stamp - timezone.now().timestamp()) < 300
        assert verify(
            secret=SECRET,
            timestamp=stamp,
            body=request.body,
            signature=request.headers["X-Apollo-Signature"],
        )
        assert not verify(
            secret="another-secret-entirely",
            timestamp=stamp,
            body=request.body,
            signature=request.headers["X-Apollo-Signature"],
        )
    done = json.loads(receiver.received[1].body)["deployment"]
    assert done["service"] == "checkout"
    assert done["environment"] == "staging"
    assert done["status"] == "DONE"
    assert done["deployed_by"] == "alice"
    assert done["url"].endswith(f"/deployments/{deployment.pk}/")
    assert Delivery.objects.filter(state=Delivery.State.DELIVERED).count() == 2


def test_a_failed_delivery_is_retried_with_a_growing_back_off(
    alice: User, checkout: Service, staging: Environment
) -> None:
    with running() as receiver:
        receiver.answers = [500, 503]
        subscribe(alice, receiver.url)
        deployment = pending(checkout, staging, alice)
        deployment.transition_to(Status.STARTED)
        assert deliver_due(owner=OWNER) == 0
        first = Delivery.objects.get()
        assert first.state == Delivery.State.PENDING
        assert first.response_code == 500
        assert first.last_error == "the receiver answered 500"
        assert first.next_attempt_at - first.last_attempt_at == timedelta(seconds=5)  # type: ignore[operator]
        assert deliver_due(owner=OWNER) == 0  # not due yet: nothing is posted
        assert len(receiver.received) == 1
        time_passes()
        assert deliver_due(owner=OWNER) == 0
        second = Delivery.objects.get()
        assert second.attempts == 2
        assert second.next_attempt_at - second.last_attempt_at == timedelta(seconds=10)  # type: ignore[operator]
        time_passes()
        assert deliver_due(owner=OWNER) == 1
    assert Delivery.objects.get().state == Delivery.State.DELIVERED
    assert len(receiver.received) == 3
    assert len({r.headers["X-Apollo-Delivery"] for r in receiver.received}) == 1


def test_events_arrive_in_order_per_deployment_even_across_a_failure(
    alice: User, checkout: Service, staging: Environment
) -> None:
    other = factories.make_service("catalog")
    with running() as receiver:
        subscribe(alice, receiver.url)
        first = pending(checkout, staging, alice)
        second = pending(other, staging, alice)
        first.transition_to(Status.STARTED)
        second.transition_to(Status.STARTED)
        first.transition_to(Status.DONE)
        second.transition_to(Status.FAILED, reason="crash loop")
        receiver.answers = [200, 500]  # the second event fails once
        assert deliver_due(owner=OWNER) == 1  # the queue stops behind the failure
        time_passes()
        assert deliver_due(owner=OWNER) == 3
    got = events_of(receiver.received)
    assert got[:2] == [(first.pk, "started"), (second.pk, "started")]  # the retry, then on
    assert got[2:] == [(second.pk, "started"), (first.pk, "done"), (second.pk, "failed")]
    delivered = list(dict.fromkeys(got))
    assert [e for e in delivered if e[0] == first.pk] == [(first.pk, "started"), (first.pk, "done")]
    assert [e for e in delivered if e[0] == second.pk] == [
        (second.pk, "started"),
        (second.pk, "failed"),
    ]


def test_a_receiver_that_is_down_loses_nothing_once_it_is_back(
    alice: User, checkout: Service, staging: Environment
) -> None:
    with running() as receiver:
        pass  # now down: its port refuses connections
    subscribe(alice, receiver.url)
    deployments = [pending(checkout, staging, alice) for _ in range(1)]
    for d in deployments:
        finish(d)
    for _ in range(3):
        assert deliver_due(owner=OWNER) == 0
        time_passes()
    head = Delivery.objects.order_by("id").first()
    assert head is not None
    assert head.attempts == 3
    assert "ConnectionError" in head.last_error or "refused" in head.last_error.lower()
    assert Deployment.objects.get(pk=deployments[0].pk).status == Status.DONE  # not delayed
    with running(receiver):
        assert deliver_due(owner=OWNER) == 2
    assert events_of(receiver.received) == [
        (deployments[0].pk, "started"),
        (deployments[0].pk, "done"),
    ]


def test_a_slack_subscription_gets_a_block_kit_message(
    alice: User, checkout: Service, staging: Environment
) -> None:
    with running() as receiver:
        subscription = Subscription(name="slack", kind=Subscription.Kind.SLACK)
        save_subscription(actor=alice, subscription=subscription, url=receiver.url)
        deployment = pending(checkout, staging, alice)
        deployment.transition_to(Status.STARTED)
        deployment.transition_to(Status.FAILED, reason="ImagePullBackOff")
        assert deliver_due(owner=OWNER) == 2
    message = json.loads(receiver.received[1].body)
    assert "X-Apollo-Signature" not in receiver.received[1].headers
    assert message["text"].startswith(f"#{deployment.pk} checkout@")
    assert message["text"].endswith("to staging FAILED")
    assert message["blocks"][0]["type"] == "section"
    fields = " ".join(f["text"] for f in message["blocks"][1]["fields"])
    assert "alice" in fields
    assert deployment.version.git_commit_sha in fields
    assert message["blocks"][2]["elements"][0]["url"].endswith(f"/deployments/{deployment.pk}/")


def test_only_matching_subscriptions_and_events_are_queued(
    alice: User, checkout: Service, staging: Environment
) -> None:
    production = factories.make_environment("production", availability="production")
    subscribe(alice, "http://127.0.0.1:9/x", service=checkout)
    subscribe(alice, "http://127.0.0.1:9/y", environment=production)
    subscribe(alice, "http://127.0.0.1:9/z", events=["failed"])
    subscribe(alice, "http://127.0.0.1:9/w", enabled=False)
    finish(pending(checkout, staging, alice))
    queued = sorted(Delivery.objects.values_list("subscription__url_host", "event"))
    assert [e for _, e in queued] == ["done", "started"]  # only the checkout subscription


def test_a_redirect_is_not_followed(alice: User, checkout: Service, staging: Environment) -> None:
    with running() as target, running() as receiver:
        receiver.redirect_to = target.url
        subscribe(alice, receiver.url)
        pending(checkout, staging, alice).transition_to(Status.STARTED)
        assert deliver_due(owner=OWNER) == 0
    assert target.received == []
    assert Delivery.objects.get().last_error == "the receiver answered 302"


@pytest.mark.django_db(transaction=True)
def test_the_workers_deliverer_thread_posts_the_outbox(
    alice: User, checkout: Service, staging: Environment
) -> None:
    with running() as receiver:
        subscribe(alice, receiver.url)
        deployment = pending(checkout, staging, alice)
        shutdown = threading.Event()
        thread = start_deliverer(shutdown=shutdown, owner=OWNER)
        try:
            finish(deployment)
            deadline = time.monotonic() + 30
            while len(receiver.received) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            shutdown.set()
            thread.join(30)
    assert events_of(receiver.received) == [(deployment.pk, "started"), (deployment.pk, "done")]
    assert not thread.is_alive()
