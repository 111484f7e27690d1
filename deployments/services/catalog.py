"""Saving a service (recorded with its diff) and deleting one: its grants and blockers are
revoked first, each recorded in history."""

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction

from deployments.models import Service
from history.services import describe, record_change
from permissions.removal import retire_rights


@transaction.atomic
def delete_service(*, actor: User | AnonymousUser | None, service: Service) -> None:
    """Delete a service that was never deployed (deployments protect the others)."""
    retire_rights(actor=actor, reason=f"service '{service}' was deleted", service=service)
    record_change(actor=actor, kind="service", target=service, before=describe(service), after=None)
    service.delete()


TEMPLATES = ("deployment_template", "service_template", "ingress_template", "extra_templates")


@transaction.atomic
def save_service(*, actor: User | AnonymousUser | None, service: Service) -> Service:
    """Create or change a service (the admin saves through here); records who changed what,
    the templates as unified diffs, in the same transaction."""
    saved = Service.objects.filter(pk=service.pk).first() if service.pk else None
    before = describe(saved) if saved is not None else None
    service.full_clean()
    service.save()
    record_change(
        actor=actor,
        kind="service",
        target=service,
        before=before,
        after=describe(service),
        text_fields=TEMPLATES,
    )
    return service
