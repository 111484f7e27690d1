"""Deleting a service: its grants and blockers are revoked first, each recorded in history."""

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction

from deployments.models import Service
from history.services import record_event
from permissions.removal import retire_rights


@transaction.atomic
def delete_service(*, actor: User | AnonymousUser | None, service: Service) -> None:
    """Delete a service that was never deployed (deployments protect the others)."""
    retire_rights(actor=actor, reason=f"service '{service}' was deleted", service=service)
    record_event(actor=actor, action="service.deleted", summary=f"Deleted service {service}")
    service.delete()
