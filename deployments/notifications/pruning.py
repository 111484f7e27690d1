"""Pruning the delivery log: a delivered row is kept APOLLO_NOTIFICATION_RETENTION_DAYS, then
deleted (by the deliverer thread once an hour, or `manage.py prune_notifications`).

What stays, so the log in the admin keeps answering "is this receiver working?": every pending
row (the outbox itself), every row given up (what an admin acts on), and the newest delivered
row of each subscription however old (when it last got through).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from deployments.notifications.models import Delivery

CHUNK = 1000  # rows per DELETE: a large backlog never holds a long lock
PRUNE_EVERY = timedelta(hours=1)


def retention() -> timedelta:
    return timedelta(days=settings.APOLLO_NOTIFICATION_RETENTION_DAYS)


def prune_delivered(*, now: datetime | None = None, keep: timedelta | None = None) -> int:
    """Delete the delivered rows older than `keep` (default: the setting), but each
    subscription's newest delivered row. Returns how many rows were deleted."""
    cutoff = (now or timezone.now()) - (keep if keep is not None else retention())
    newest = (
        Delivery.objects.filter(state=Delivery.State.DELIVERED)
        .values("subscription_id")
        .annotate(last=Max("id"))
        .values("last")
    )
    old = (
        Delivery.objects.filter(state=Delivery.State.DELIVERED, delivered_at__lt=cutoff)
        .exclude(pk__in=newest)
        .order_by("id")
    )
    deleted = 0
    while True:
        ids = list(old.values_list("pk", flat=True)[:CHUNK])
        if ids:
            deleted += Delivery.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < CHUNK:
            return deleted
