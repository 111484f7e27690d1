"""Permission services: ask (``can``, ``explain``) and change (``grant``, ``save_grant``,
``revoke_grant``). The rule itself is documented and implemented in ``permissions.rules``.

Pages, the API, websocket consumers and management commands all ask ``can``/``explain``; no
view decides a permission on its own. Every change to grants goes through ``save_grant`` or
``revoke_grant``, which write the history event in the same transaction (the admin calls them
too).
"""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.core.exceptions import PermissionDenied
from django.db import transaction

from deployments.models import Service
from environments.models import Environment
from history.services import record_event
from permissions.models import Grant, GrantGroupObjectPermission, GrantUserObjectPermission
from permissions.rules import Decision, HoldingIndex, Target, decide, sentence
from permissions.selectors import holdings
from permissions.verbs import Effect, Verb

Actor = User | AnonymousUser | None
Holder = User | Group


def make_target(*, service: Service | None, environment: Environment | None) -> Target:
    return Target(
        service_id=service.pk if service is not None else None,
        service_name=service.name if service is not None else "",
        environment_id=environment.pk if environment is not None else None,
        environment_name=environment.name if environment is not None else "",
        availability=environment.availability if environment is not None else "",
    )


def explain(
    user: User | AnonymousUser,
    verb: Verb | str,
    *,
    service: Service | None = None,
    environment: Environment | None = None,
) -> Decision:
    """Whether the user may do the verb to the target, which grant decided, and why (in words)."""
    verb = Verb(verb)
    target = make_target(service=service, environment=environment)
    # SECURITY: anonymous and deactivated accounts are refused before any grant is read.
    if not user.is_authenticated:
        return Decision(
            False, sentence("anonymous", verb, target, allowed=False, why="not signed in")
        )
    assert isinstance(user, User)
    who = user.get_username()
    if not user.is_active:
        return Decision(False, sentence(who, verb, target, allowed=False, why="account inactive"))
    if user.is_superuser:
        return Decision(True, sentence(who, verb, target, allowed=True, why="superuser"))
    index = HoldingIndex(holdings(verb=verb, user=user, target=target))
    return decide(index, target, who=who, verb=verb)


def can(
    user: User | AnonymousUser,
    verb: Verb | str,
    *,
    service: Service | None = None,
    environment: Environment | None = None,
) -> bool:
    """May the user do the verb to the service in the environment? One query (none for admins)."""
    return explain(user, verb, service=service, environment=environment).allowed


def grant_holder(grant: Grant) -> Holder | None:
    """The user or group holding the grant (the admin keeps one holder per grant)."""
    user_row = grant.user_perms.select_related("user").first()
    if user_row is not None:
        return user_row.user
    group_row = grant.group_perms.select_related("group").first()
    return group_row.group if group_row is not None else None


def grant_verbs(grant: Grant) -> list[str]:
    codenames = {p.permission.codename for p in grant.user_perms.select_related("permission")}
    codenames |= {p.permission.codename for p in grant.group_perms.select_related("permission")}
    return [verb.value for verb in Verb if verb.value in codenames]


def describe_grant(grant: Grant) -> dict[str, Any]:
    """What history stores about a grant: enough to read the change without the row."""
    holder = grant_holder(grant)
    holder_text = "" if holder is None else f"{_holder_kind(holder)} {holder}"
    return {
        "effect": grant.effect,
        "scope": grant.scope_label,
        "holder": holder_text,
        "verbs": grant_verbs(grant),
        "note": grant.note,
    }


def _holder_kind(holder: Holder) -> str:
    return "user" if isinstance(holder, User) else "group"


def _verb_permissions(verbs: Iterable[Verb | str]) -> list[Permission]:
    codenames = {Verb(v).value for v in verbs}
    return list(
        Permission.objects.filter(
            content_type__app_label="permissions",
            content_type__model="grant",
            codename__in=codenames,
        )
    )


def _replace_holdings(grant: Grant, holder: Holder, verbs: Iterable[Verb | str]) -> None:
    grant.user_perms.all().delete()
    grant.group_perms.all().delete()
    permissions = _verb_permissions(verbs)
    if isinstance(holder, User):
        GrantUserObjectPermission.objects.bulk_create(
            GrantUserObjectPermission(content_object=grant, user=holder, permission=p)
            for p in permissions
        )
    else:
        GrantGroupObjectPermission.objects.bulk_create(
            GrantGroupObjectPermission(content_object=grant, group=holder, permission=p)
            for p in permissions
        )


def own_grant_refusal(actor: Actor, holder: Holder | None) -> str | None:
    """Why actor may not create, change or revoke a grant held by holder, or None if they may.

    Nobody but a superuser administers their own rights: a staff member allowed to edit grants
    cannot give themselves (or a group they belong to) verbs, nor remove a DENY that binds them.
    """
    if not isinstance(actor, User) or actor.is_superuser or holder is None:
        return None
    if isinstance(holder, User) and holder.pk == actor.pk:
        return "You cannot change your own grants; ask another administrator."
    if isinstance(holder, Group) and actor.groups.filter(pk=holder.pk).exists():
        return f"You cannot change grants of group '{holder}', which you belong to."
    return None


def _check_not_own(actor: Actor, holder: Holder | None) -> None:
    refusal = own_grant_refusal(actor, holder)
    if refusal is not None:
        raise PermissionDenied(refusal)


@transaction.atomic
def save_grant(*, actor: Actor, grant: Grant, holder: Holder, verbs: Iterable[Verb | str]) -> Grant:
    """Create or change a grant (scope, effect) with its holder and verbs; records history."""
    verbs = [Verb(v) for v in verbs]
    if not verbs:
        raise ValueError("a grant needs at least one verb")
    adding = grant._state.adding
    _check_not_own(actor, holder)
    if not adding:
        _check_not_own(actor, grant_holder(Grant.objects.get(pk=grant.pk)))
    before = None if adding else describe_grant(Grant.objects.get(pk=grant.pk))
    grant.full_clean()
    grant.save()
    _replace_holdings(grant, holder, verbs)
    after = describe_grant(grant)
    verb_text = ", ".join(after["verbs"])
    record_event(
        actor=actor,
        action="grant.created" if adding else "grant.changed",
        summary=f"{'Granted' if adding else 'Changed grant'}: {grant.effect} {verb_text} "
        f"on {grant.scope_label} to {after['holder']}",
        target=grant,
        data={"before": before, "after": after},
    )
    return grant


def grant(
    *,
    actor: Actor,
    verbs: Iterable[Verb | str],
    effect: Effect = Effect.ALLOW,
    user: User | None = None,
    group: Group | None = None,
    service: Service | None = None,
    environment: Environment | None = None,
    availability: str = "",
    note: str = "",
) -> Grant:
    """Give a user or a group verbs at one scope (tests, the demo seed and scripts use this)."""
    holders = [h for h in (user, group) if h is not None]
    if len(holders) != 1:
        raise ValueError("give exactly one of user or group")
    new = Grant(
        effect=effect,
        service=service,
        environment=environment,
        availability=availability,
        note=note,
    )
    return save_grant(actor=actor, grant=new, holder=holders[0], verbs=verbs)


@transaction.atomic
def revoke_grant(*, actor: Actor, grant: Grant, reason: str = "") -> None:
    """Delete a grant and its guardian rows; records history with what it was (and why, when
    it goes because what it applied to is deleted)."""
    _check_not_own(actor, grant_holder(grant))
    before = describe_grant(grant)
    why = f" because {reason}" if reason else ""
    record_event(
        actor=actor,
        action="grant.revoked",
        summary=f"Revoked{why}: {grant.effect} {', '.join(before['verbs'])} on "
        f"{grant.scope_label} from {before['holder'] or 'nobody'}",
        target=grant,
        data={"before": before, "after": None, **({"reason": reason} if reason else {})},
    )
    grant.delete()
