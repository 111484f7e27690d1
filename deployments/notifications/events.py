"""Writing the outbox: one Delivery per matching subscription, in the caller's transaction.

Called where a deployment's status changes (Deployment.transition_to), where a deployment is
requested (deployments.services.deploy) and where a request is refused by a blocker. Nothing
leaves the process here: the worker's deliverer posts the rows (notifications.delivery).
"""

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from deployments.notifications.models import Delivery, Event, Subscription

__all__ = [
    "Event",
    "blocked",
    "deployment_event",
    "marked_bad",
    "matching",
    "status_changed",
    "subscribed",
]

if TYPE_CHECKING:
    from deployments.models import BadVersion, Deployment, Service
    from environments.models import Environment

logger = logging.getLogger(__name__)

# The statuses a subscriber hears about; the others (PENDING_CANCELLATION, CANCELING) are
# steps of a cancel, announced by its CANCELED.
STATUS_EVENTS = {"STARTED": Event.STARTED, "DONE": Event.DONE, "FAILED": Event.FAILED}
STATUS_EVENTS["CANCELED"] = Event.CANCELED


def subscribed() -> bool:
    """Whether any subscription is enabled (one query): without one, a status change queues
    no message and is written alone (Deployment.transition_to)."""
    return Subscription.objects.filter(enabled=True).exists()


def matching(service_id: int, environment_id: int) -> "QuerySet[Subscription]":
    """The enabled subscriptions of a target, whatever events they hear: the deploy request
    reads whether any exists beside the target's state, in the same query
    (deployments.services.deploy._target_state), and skips the outbox lookup when none does."""
    return Subscription.objects.filter(
        Q(service_id=service_id) | Q(service__isnull=True),
        Q(environment_id=environment_id) | Q(environment__isnull=True),
        enabled=True,
    )


def _subscriptions(service_id: int, environment_id: int, event: Event) -> list[Subscription]:
    # events is a short JSON list; filtered here (JSON containment differs across databases).
    return [s for s in matching(service_id, environment_id) if event.value in s.events]


def describe(deployment: "Deployment") -> dict[str, Any]:
    """What a message says about a deployment: who, what, where, which sha, status, link."""
    version = deployment.version
    return {
        "id": deployment.pk,
        "service": deployment.service.name,
        "environment": deployment.environment.name,
        "group": deployment.group.name if deployment.group_id and deployment.group else None,
        "git_commit_sha": version.git_commit_sha,
        "commit_url": version.commit_url,
        "status": deployment.status,
        "status_reason": deployment.status_reason,
        "deployed_by": deployment.deployed_by.get_username(),
        "message": deployment.message,
        "override_reason": deployment.override_reason,
        "url": settings.APOLLO_PUBLIC_URL + reverse("deployment-detail", args=[deployment.pk]),
    }


def _write(subscriptions: list[Subscription], event: Event, payload: dict[str, Any]) -> None:
    now = timezone.now()
    Delivery.objects.bulk_create(
        Delivery(
            subscription=s,
            deployment_id=(payload.get("deployment") or {}).get("id"),
            event=event,
            payload=payload,
            next_attempt_at=now,
        )
        for s in subscriptions
    )


def deployment_event(*, deployment: "Deployment", event: Event, note: str = "") -> None:
    """Queue `event` about `deployment` for its subscribers (inside the caller's transaction)."""
    subscriptions = _subscriptions(deployment.service_id, deployment.environment_id, event)
    if not subscriptions:
        return
    payload = {
        "event": event.value,
        "occurred_at": timezone.now().isoformat(),
        "note": note,
        "deployment": describe(deployment),
    }
    _write(subscriptions, event, payload)


def status_changed(deployment: "Deployment") -> None:
    """Deployment.transition_to calls this, in the transaction of the status change, when
    some subscription is enabled (it read `subscribed` already).

    The instance may be a bare Deployment(pk=, status=) (the worker's claim): the row is read
    again, with what a message names. A failure here is logged and rolled back to a savepoint:
    it never undoes or stops the status change (a rollout never waits on notifications)."""
    event = STATUS_EVENTS.get(str(deployment.status))
    if event is None:
        return
    from deployments.models import Deployment

    try:
        with transaction.atomic():
            fresh = Deployment.objects.with_related().get(pk=deployment.pk)
            deployment_event(deployment=fresh, event=event, note=fresh.status_reason)
    except Exception:
        logger.exception("notifications of deployment %s not queued", deployment.pk)


def blocked(
    *,
    service: "Service",
    environment: "Environment",
    sha: str,
    username: str,
    reason: str,
) -> None:
    """A request refused by a blocker: there is no deployment, the message names the target."""
    subscriptions = _subscriptions(service.pk, environment.pk, Event.BLOCKED)
    if not subscriptions:
        return
    payload = {
        "event": Event.BLOCKED.value,
        "occurred_at": timezone.now().isoformat(),
        "note": reason,
        "request": {
            "service": service.name,
            "environment": environment.name,
            "git_commit_sha": sha,
            "requested_by": username,
            "reason": reason,
        },
    }
    with transaction.atomic():
        _write(subscriptions, Event.BLOCKED, payload)


def marked_bad(mark: "BadVersion") -> None:
    """A version marked bad in an environment, by a user or by Apollo itself (an automatic
    revert): the message names the version, who marked it (Apollo when nobody did), why, and
    the deployment it was marked from. In the caller's transaction, as the mark is."""
    subscriptions = _subscriptions(mark.service_id, mark.environment_id, Event.MARKED_BAD)
    if not subscriptions:
        return
    payload = {
        "event": Event.MARKED_BAD.value,
        "occurred_at": timezone.now().isoformat(),
        "note": mark.reason,
        "mark": {
            "service": mark.service.name,
            "environment": mark.environment.name,
            "sha": mark.sha,
            "marked_by": mark.marked_by_name,
            "reason": mark.reason,
            "deployment": mark.deployment_id,
            "url": settings.APOLLO_PUBLIC_URL + reverse("bad-versions"),
        },
    }
    _write(subscriptions, Event.MARKED_BAD, payload)
