"""History for grants, blockers and API tokens that go away without their service being called.

Deleting a service, an environment, a user or a group deletes (by cascade) the grants, blockers
and tokens attached to it. Those are changes to who may do what, so they are recorded like any
revocation: who deleted (the request's user, else "system"), what was removed and why.
"""

from typing import Any

from django.contrib.auth.models import Group, User
from django.db import models
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from history.context import current_actor, is_recorded
from history.services import record_event
from permissions.models import ApiToken, Blocker, Grant

_REASON = "_apollo_deletion_reason"


def _reason(instance: models.Model, origin: Any) -> str:
    given = getattr(instance, _REASON, None)
    if given:
        return str(given)
    if isinstance(origin, models.Model) and origin is not instance:
        return f"{origin._meta.verbose_name} '{origin}' was deleted"
    return "it was deleted directly"


def _record_removal(
    instance: models.Model, action: str, summary: str, before: dict[str, Any] | None
) -> None:
    data = {"before": before, "after": None} if before is not None else {}
    record_event(actor=current_actor(), action=action, summary=summary, target=instance, data=data)


@receiver(pre_delete, sender=Grant, dispatch_uid="apollo_grant_pre_delete")
def _grant_deleted(sender: type[Grant], instance: Grant, origin: Any = None, **kwargs: Any) -> None:
    from permissions.services import describe_grant

    if is_recorded(instance):
        return
    before = {**describe_grant(instance), "reason": _reason(instance, origin)}
    _record_removal(
        instance, "grant.revoked",
        f"Revoked because {before['reason']}: {instance.effect} {', '.join(before['verbs'])} "
        f"on {instance.scope_label} from {before['holder'] or 'nobody'}",
        before,
    )  # fmt: skip


@receiver(pre_delete, sender=Blocker, dispatch_uid="apollo_blocker_pre_delete")
def _blocker_deleted(
    sender: type[Blocker], instance: Blocker, origin: Any = None, **kwargs: Any
) -> None:
    from permissions.blockers import describe_blocker

    if is_recorded(instance):
        return
    exempt = [u.username for u in instance.exempt_users.all()]
    before = {**describe_blocker(instance, exempt), "reason": _reason(instance, origin)}
    _record_removal(
        instance, "blocker.deleted",
        f"Deleted blocker '{instance.name}' ({instance.get_kind_display()}) "
        f"because {before['reason']}",
        before,
    )  # fmt: skip


@receiver(pre_delete, sender=ApiToken, dispatch_uid="apollo_token_pre_delete")
def _token_deleted(
    sender: type[ApiToken], instance: ApiToken, origin: Any = None, **kwargs: Any
) -> None:
    if is_recorded(instance):
        return
    _record_removal(
        instance, "token.revoked",
        f"revoked API token '{instance.name}' ({instance.prefix}…) of {instance.user} "
        f"because {_reason(instance, origin)}",
        None,
    )  # fmt: skip


def _revoke_held_grants(holder: User | Group, grants: "models.QuerySet[Grant]") -> None:
    # Deleting a holder removes only guardian's rows; the grant itself would stay behind, held by
    # nobody. Delete it here so it is recorded and nothing orphaned remains.
    kind = "user" if isinstance(holder, User) else "group"
    for held in grants.distinct():
        setattr(held, _REASON, f"{kind} '{holder}' was deleted")
        held.delete()


@receiver(pre_delete, sender=User, dispatch_uid="apollo_user_grants_pre_delete")
def _user_deleted(sender: type[User], instance: User, **kwargs: Any) -> None:
    _revoke_held_grants(instance, Grant.objects.filter(user_perms__user=instance))


@receiver(pre_delete, sender=Group, dispatch_uid="apollo_group_grants_pre_delete")
def _group_deleted(sender: type[Group], instance: Group, **kwargs: Any) -> None:
    _revoke_held_grants(instance, Grant.objects.filter(group_perms__group=instance))
