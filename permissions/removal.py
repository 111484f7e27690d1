"""Deleting what rights hang on: a user, a group (here), a service or an environment (their apps).

Deleting any of them would remove grants, blockers and API tokens by database cascade, with no
history of it, and deleting a user or group would leave its grants behind held by nobody.
`retire_rights` revokes each of them through its own service first, so every one gets its
history event naming who deleted what and why. The admin deletes through these services.
"""

from django.contrib.auth.models import Group, User
from django.db import transaction

from deployments.models import Service
from environments.models import Environment
from history.services import record_event
from permissions.blockers import delete_blocker
from permissions.models import ApiToken, Blocker, Grant
from permissions.services import Actor, Holder, revoke_grant
from permissions.tokens import revoke_token


@transaction.atomic
def retire_rights(
    *,
    actor: Actor,
    reason: str,
    service: Service | None = None,
    environment: Environment | None = None,
    holder: Holder | None = None,
) -> None:
    """Revoke, one history event each, the grants, blockers and tokens attached to one object."""
    grants = Grant.objects.none()
    blockers = Blocker.objects.none()
    tokens = ApiToken.objects.none()
    if service is not None:
        grants, blockers = service.grants.all(), service.blockers.all()
    elif environment is not None:
        grants, blockers = environment.grants.all(), environment.blockers.all()
    elif isinstance(holder, User):
        grants, tokens = Grant.objects.filter(user_perms__user=holder), holder.api_tokens.all()
    elif isinstance(holder, Group):
        grants = Grant.objects.filter(group_perms__group=holder)
    for grant in grants.distinct():
        revoke_grant(actor=actor, grant=grant, reason=reason)
    for blocker in blockers:
        delete_blocker(actor=actor, blocker=blocker, reason=reason)
    acting = actor if isinstance(actor, User) else None
    for token in tokens.select_related("user"):
        revoke_token(actor=acting, token=token, reason=reason)


@transaction.atomic
def delete_holder(*, actor: Actor, holder: Holder) -> None:
    """Delete a user or a group, their grants (and a user's API tokens) first, all recorded."""
    kind = "user" if isinstance(holder, User) else "group"
    retire_rights(actor=actor, reason=f"{kind} '{holder}' was deleted", holder=holder)
    record_event(actor=actor, action=f"{kind}.deleted", summary=f"Deleted {kind} {holder}")
    holder.delete()
