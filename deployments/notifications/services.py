"""Saving and deleting subscriptions: the one path of the admin and the service page."""

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from deployments.models import Service
from deployments.notifications import urlguard
from deployments.notifications.models import Event, Subscription
from environments.models import Environment
from history.services import record_event
from permissions.selectors import allowed_targets
from permissions.verbs import Verb

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


def manage_scopes(user: User, service: Service) -> tuple[set[int], bool]:
    """The environments where `user` may manage `service`'s notifications, and whether that is
    every environment (which a subscription to "every environment" takes)."""
    managed = {e for s, e in allowed_targets(user, Verb.MANAGE) if s == service.pk}
    every = bool(managed) and managed >= set(Environment.objects.values_list("pk", flat=True))
    return managed, every


def _check_manage(user: User, service: Service, environment: Environment | None) -> None:
    managed, every = manage_scopes(user, service)
    allowed = every if environment is None else environment.pk in managed
    if not allowed:
        where = environment.name if environment is not None else "every environment"
        raise PermissionDenied(f"you may not manage {service.name}'s notifications in {where}")


def subscribe_service(
    *,
    user: User,
    service: Service,
    environment: Environment | None,
    name: str,
    kind: str,
    url: str,
    secret: str,
    events: list[str],
) -> Subscription:
    """A `manage` holder's subscription to a service's deployments (the service page).
    Raises PermissionDenied or ValidationError; nothing is saved then."""
    _check_manage(user, service, environment)
    subscription = Subscription(
        name=name, kind=kind, service=service, environment=environment, events=events
    )
    return save_subscription(actor=user, subscription=subscription, url=url, secret=secret)


def unsubscribe_service(*, user: User, subscription: Subscription) -> None:
    assert subscription.service is not None
    _check_manage(user, subscription.service, subscription.environment)
    delete_subscription(actor=user, subscription=subscription)
