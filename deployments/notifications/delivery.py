"""Posting the outbox: the worker's deliverer thread (started by ``rundeployments``).

Each pass claims the subscriptions that have a due delivery (a lease, taken with a
conditional UPDATE, so two workers never post the same queue) and posts each one's pending
deliveries oldest first, stopping at the first failure: later events wait behind it, so a
receiver sees the events of a deployment in order, and nothing is lost while it is down.
A failure is retried after an exponential back-off (APOLLO_WEBHOOK_BACKOFF_SECONDS doubling
up to APOLLO_WEBHOOK_BACKOFF_MAX_SECONDS); after APOLLO_WEBHOOK_MAX_ATTEMPTS the delivery is
given up (logged in the admin) and the queue moves on. The deliverer runs on its own thread
and connections: a slow receiver never delays a rollout.
"""

import logging
import threading
import time
from datetime import datetime, timedelta

import urllib3
from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Q
from django.utils import timezone

from deployments.notifications import messages, signing, urlguard
from deployments.notifications.models import Delivery, Subscription
from deployments.notifications.pruning import PRUNE_EVERY, prune_delivered
from environments.crypto import CredentialError

logger = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
MAX_RESPONSE_BYTES = 64 * 1024
BATCH = 50  # deliveries of one subscription per pass


class DeliveryError(Exception):
    pass


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: base, 2 base, 4 base, ... up to the cap."""
    base = settings.APOLLO_WEBHOOK_BACKOFF_SECONDS
    cap = settings.APOLLO_WEBHOOK_BACKOFF_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** min(attempts - 1, 30)))


def post(*, url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST body to url through the SSRF guard: to the address checked, no redirect, short
    timeouts, at most MAX_RESPONSE_BYTES read. Returns the status; raises DeliveryError."""
    try:
        target = urlguard.resolve(url)
    except urlguard.UnsafeURL as exc:
        raise DeliveryError(f"refused: {exc}") from None
    timeout = urllib3.Timeout(
        connect=settings.APOLLO_WEBHOOK_TIMEOUT_SECONDS,
        read=settings.APOLLO_WEBHOOK_TIMEOUT_SECONDS,
    )
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address, target.port, timeout=timeout, retries=False
        )
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=False,
        )
        try:
            response.read(MAX_RESPONSE_BYTES)
        finally:
            response.release_conn()
        return int(response.status)
    except urllib3.exceptions.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {_short(exc)}") from None
    finally:
        pool.close()


def _short(exc: BaseException) -> str:
    return str(exc)[:300]


def _headers(subscription: Subscription, delivery: Delivery, body: bytes) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Apollo-Notifications/1",
        "X-Apollo-Event": delivery.event,
        "X-Apollo-Delivery": str(delivery.pk),
    }
    if subscription.kind == Subscription.Kind.WEBHOOK:
        stamp = int(time.time())
        headers[signing.TIMESTAMP_HEADER] = str(stamp)
        headers[signing.SIGNATURE_HEADER] = signing.sign(
            secret=subscription.secret, timestamp=stamp, body=body
        )
    return headers


def attempt(delivery: Delivery) -> bool:
    """Post one delivery and record the attempt. True when the receiver took it (2xx)."""
    subscription = delivery.subscription
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    status: int | None = None
    try:
        body = messages.body(subscription, delivery.payload)
        status = post(
            url=subscription.url, body=body, headers=_headers(subscription, delivery, body)
        )
        error = "" if 200 <= status < 300 else f"the receiver answered {status}"
    except DeliveryError as exc:
        error = str(exc)
    except CredentialError:
        error = "the stored URL or secret cannot be decrypted with the current key"
    delivery.response_code = status
    delivery.last_error = error
    if not error:
        delivery.state = Delivery.State.DELIVERED
        delivery.delivered_at = timezone.now()
    elif delivery.attempts >= settings.APOLLO_WEBHOOK_MAX_ATTEMPTS:
        delivery.state = Delivery.State.GAVE_UP
        logger.warning("notification %s given up: %s", delivery.pk, error)
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save(
        update_fields=[
            "attempts",
            "last_attempt_at",
            "response_code",
            "last_error",
            "state",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    return not error


def _claim(subscription_id: int, owner: str, now: datetime) -> bool:
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(lease_owner=owner)
    claimed = Subscription.objects.filter(free, pk=subscription_id).update(
        lease_owner=owner, lease_expires_at=now + LEASE
    )
    return claimed == 1


def _release(subscription_id: int, owner: str) -> None:
    Subscription.objects.filter(pk=subscription_id, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None
    )


def deliver_subscription(subscription_id: int, *, owner: str) -> int:
    """Post a subscription's due deliveries in order; stop at the first failure."""
    sent = 0
    queue = Delivery.objects.filter(
        subscription_id=subscription_id, state=Delivery.State.PENDING
    ).select_related("subscription")
    for delivery in queue.order_by("id")[:BATCH]:
        if delivery.next_attempt_at > timezone.now():
            break  # the head of the queue waits its back-off; the others wait behind it
        if not _claim(subscription_id, owner, timezone.now()):
            break  # the lease was lost (this pass took too long): another worker goes on
        if not attempt(delivery):
            break
        sent += 1
    return sent


def deliver_due(*, owner: str) -> int:
    """One pass over every subscription with a due delivery. Returns how many were sent."""
    now = timezone.now()
    due = (
        Delivery.objects.filter(state=Delivery.State.PENDING, subscription__enabled=True)
        .values_list("subscription_id", flat=True)
        .distinct()
    )
    sent = 0
    for subscription_id in sorted(set(due)):
        if not _claim(subscription_id, owner, now):
            continue
        try:
            sent += deliver_subscription(subscription_id, owner=owner)
        finally:
            _release(subscription_id, owner)
    return sent


def run_deliveries(*, shutdown: threading.Event, owner: str, poll_interval: float = 1.0) -> None:
    """The deliverer thread: a pass, then a wait, until shutdown; the delivery log is pruned
    at the start and then once every PRUNE_EVERY."""
    next_prune = time.monotonic()
    try:
        while not shutdown.is_set():
            close_old_connections()
            try:
                deliver_due(owner=owner)
            except Exception:
                logger.exception("notification delivery pass failed")
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY.total_seconds()
                try:
                    prune_delivered()
                except Exception:
                    logger.exception("pruning the notification log failed")
            shutdown.wait(poll_interval)
    finally:
        connections.close_all()


def start_deliverer(*, shutdown: threading.Event, owner: str) -> threading.Thread:
    thread = threading.Thread(
        target=run_deliveries,
        kwargs={"shutdown": shutdown, "owner": owner},
        name="notifications",
        daemon=True,
    )
    thread.start()
    return thread
