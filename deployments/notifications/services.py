"""Saving and deleting subscriptions: the one path of the admin and the service page."""

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from deployments.notifications import urlguard
from deployments.notifications.models import Event, Subscription
from history.services import record_event

MIN_SECRET_LENGTH = 16


def check_url(url: str) -> str:
    """The URL, stripped, or ValidationError naming why the SSRF guard refuses it."""
    url = url.strip()
    try:
        urlguard.resolve(url)
    except urlguard.UnsafeURL as exc:
        raise ValidationError(f"This URL is refused: {exc}.") from None
    return url


def check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - {e.value for e in Event})
    if unknown or not events:
        raise ValidationError(f"Choose events among {', '.join(e.value for e in Event)}.")
    return [e.value for e in Event if e.value in events]


def save_subscription(
    *,
    actor: User,
    subscription: Subscription,
    url: str = "",
    secret: str = "",
) -> Subscription:
    """Create or change a subscription. `url`/`secret`: new values ("" keeps the stored one).

    Raises ValidationError (nothing saved) for an unsafe URL, a webhook without a secret of
    MIN_SECRET_LENGTH characters, or unknown events. History records the change, never the
    URL (a Slack URL is a credential) or the secret: only that they changed."""
    creating = subscription.pk is None
    if url:
        url = check_url(url)
    elif creating:
        raise ValidationError("A subscription needs a URL.")
    if secret and len(secret) < MIN_SECRET_LENGTH:
        raise ValidationError(f"The secret needs at least {MIN_SECRET_LENGTH} characters.")
    if subscription.kind == Subscription.Kind.WEBHOOK and not (
        secret or subscription.secret_ciphertext
    ):
        raise ValidationError("A signed webhook needs a secret to sign with.")
    subscription.events = check_events(list(subscription.events))
    with transaction.atomic():
        if url:
            subscription.set_url(url)
        if secret:
            subscription.set_secret(secret)
        if creating and subscription.created_by_id is None:
            subscription.created_by = actor
        subscription.save()
        changed = [what for what, new in (("URL", url), ("secret", secret)) if new]
        record_event(
            actor=actor,
            action="subscription.created" if creating else "subscription.changed",
            summary=f"{'added' if creating else 'changed'} notification {subscription.name} "
            f"({subscription.get_kind_display()} to {subscription.url_host}, "
            f"{subscription.scope})" + (f"; {' and '.join(changed)} changed" if changed else ""),
            service=subscription.service,
            environment=subscription.environment,
        )
    return subscription


def delete_subscription(*, actor: User, subscription: Subscription) -> None:
    with transaction.atomic():
        record_event(
            actor=actor,
            action="subscription.deleted",
            summary=f"removed notification {subscription.name} ({subscription.scope})",
            service=subscription.service,
            environment=subscription.environment,
        )
        subscription.delete()
