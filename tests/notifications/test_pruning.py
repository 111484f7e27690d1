"""The delivery log is pruned: delivered rows older than the retention go; pending rows, rows
given up and each subscription's newest delivered row stay."""

import threading
import time
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from deployments.notifications.delivery import start_deliverer
from deployments.notifications.models import Delivery, Event, Subscription
from deployments.notifications.pruning import prune_delivered
from deployments.notifications.services import save_subscription

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _receiver_allowed(settings: Any) -> None:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.APOLLO_NOTIFICATION_RETENTION_DAYS = 30


def subscribe(alice: User, name: str) -> Subscription:
    subscription = Subscription(name=name, kind=Subscription.Kind.SLACK)
    return save_subscription(actor=alice, subscription=subscription, url="http://127.0.0.1:9/x")


def row(subscription: Subscription, state: str, age: timedelta) -> Delivery:
    at = timezone.now() - age
    return Delivery.objects.create(
        subscription=subscription,
        event=Event.DONE,
        state=state,
        next_attempt_at=at,
        delivered_at=at if state == Delivery.State.DELIVERED else None,
    )


def test_it_deletes_delivered_rows_older_than_the_retention_and_keeps_the_rest(
    alice: User,
) -> None:
    hook, other = subscribe(alice, "hook"), subscribe(alice, "other")
    old = [row(hook, Delivery.State.DELIVERED, 40 * DAY) for _ in range(3)]
    edge = row(hook, Delivery.State.DELIVERED, 29 * DAY)  # inside the 30 days
    fresh = row(hook, Delivery.State.DELIVERED, DAY)
    gave_up = row(hook, Delivery.State.GAVE_UP, 90 * DAY)
    waiting = row(hook, Delivery.State.PENDING, 90 * DAY)
    other_old = [row(other, Delivery.State.DELIVERED, 60 * DAY) for _ in range(2)]

    assert prune_delivered() == 4  # hook's three old ones, other's older one
    left = set(Delivery.objects.values_list("pk", flat=True))
    # other's newest delivered row stays however old: the log still says when it got through
    assert left == {edge.pk, fresh.pk, gave_up.pk, waiting.pk, other_old[1].pk}
    assert not left & {d.pk for d in old}
    assert prune_delivered() == 0  # nothing more to do


def test_it_deletes_a_large_backlog_in_chunks(alice: User) -> None:
    hook = subscribe(alice, "hook")
    at = timezone.now() - 40 * DAY
    Delivery.objects.bulk_create(
        Delivery(
            subscription=hook,
            event=Event.DONE,
            state="delivered",
            next_attempt_at=at,
            delivered_at=at,
        )
        for _ in range(2500)
    )
    assert prune_delivered() == 2499
    assert Delivery.objects.count() == 1


def test_the_command_takes_a_number_of_days_and_refuses_a_bad_one(alice: User) -> None:
    hook = subscribe(alice, "hook")
    row(hook, Delivery.State.DELIVERED, 10 * DAY)
    kept = row(hook, Delivery.State.DELIVERED, 2 * DAY)
    err = StringIO()
    with pytest.raises(SystemExit):
        call_command("prune_notifications", "--days", "0", stdout=StringIO(), stderr=err)
    assert "at least 1" in err.getvalue()
    assert Delivery.objects.count() == 2  # a bad value changes nothing
    out = StringIO()
    call_command("prune_notifications", "--days", "7", stdout=out)
    assert "1 delivered notifications older than 7 days deleted" in out.getvalue()
    assert list(Delivery.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db(transaction=True)
def test_the_workers_deliverer_thread_prunes_the_log(alice: User) -> None:
    hook = subscribe(alice, "hook")
    old = row(hook, Delivery.State.DELIVERED, 40 * DAY)
    newest = row(hook, Delivery.State.DELIVERED, 35 * DAY)
    shutdown = threading.Event()
    thread = start_deliverer(shutdown=shutdown, owner="test-pruner")
    try:
        deadline = time.monotonic() + 30
        while Delivery.objects.filter(pk=old.pk).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        shutdown.set()
        thread.join(30)
    assert list(Delivery.objects.values_list("pk", flat=True)) == [newest.pk]
    assert not thread.is_alive()
