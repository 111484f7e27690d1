"""Writing history. Called by the service that makes a change, inside its transaction."""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models

from history.models import AuditEvent


def record_event(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    summary: str,
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    user = actor if isinstance(actor, User) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_name=user.get_username() if user is not None else "system",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        summary=summary[:500],
        data=data or {},
    )
