"""Rollbacks that stick: versions marked bad in an environment (issue #14, part 1).

The rule, once:
1. A version is bad in an environment while a mark on (service, environment, sha) is in force
   (BadVersion.unmarked_at is empty). The database keeps at most one mark in force.
2. A bad version is refused at request time, with who marked it and why, as a blocker refuses
   (deployments.services.deploy adds `refusal` to the blockers' refusals): page, API, Jenkins
   and group deploys alike, all or nothing. A holder of `override_blockers` may deploy it with
   a reason, recorded on the deployment (overridden_blockers) and in history.
3. Marking needs `cancel` (the verb of reverting) on the service in the environment; Apollo
   marks too (a FAILED verdict, an automatic revert: the actor is None). Unmarking needs
   `manage` and a reason; the mark is kept, with who undid it, when and why.
4. Every mark and unmark is written to history in the same transaction.
"""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from deployments.models import BadVersion, DeployableVersion, Deployment, Service
from deployments.notifications import events as notify
from environments.models import Environment
from history.services import record_event
from permissions import blockers
from permissions.services import explain
from permissions.verbs import Verb

# The refusal's name and kind, as a blocker's (the Deploy page and the API list them).
REFUSAL_NAME = "bad version"
MAX_REASON = 2000


class BadVersionError(Exception):
    """A mark or unmark that cannot be made (bad input, already unmarked): nothing changed."""


@dataclass(frozen=True)
class Marked:
    mark: BadVersion
    created: bool  # False: the version was bad already (that mark is returned)


def in_force(*, service: Service, environment: Environment, sha: str) -> QuerySet[BadVersion]:
    """The mark in force on this version here (at most one; the partial unique index serves it)."""
    return BadVersion.objects.active().filter(service=service, environment=environment, sha=sha)


def mark_in_force(*, service: Service, environment: Environment, sha: str) -> BadVersion | None:
    return (
        in_force(service=service, environment=environment, sha=sha)
        .select_related("marked_by")
        .first()
    )


def describe(mark: BadVersion, *, environment: Environment) -> str:
    """The sentence a refusal, the picker and the API show: who, when, why."""
    when = timezone.localtime(mark.marked_at).strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"version {mark.sha[:12]} is marked bad in {environment.name} by {mark.marked_by_name} "
        f"on {when}: {mark.reason}"
    )


def refusal(
    *, service: Service, environment: Environment, version: DeployableVersion
) -> blockers.Refusal | None:
    """The request-time check (rule 2): a refusal like a blocker's, overridable with a reason
    by who may override blockers."""
    mark = mark_in_force(service=service, environment=environment, sha=version.git_commit_sha)
    if mark is None:
        return None
    reason = f"Refused: {describe(mark, environment=environment)}"
    return blockers.Refusal(0, REFUSAL_NAME, REFUSAL_NAME, reason, True)


def may_mark(user: User, *, service: Service, environment: Environment) -> bool:
    return explain(user, Verb.CANCEL, service=service, environment=environment).allowed


def may_unmark(user: User, *, service: Service, environment: Environment) -> bool:
    return explain(user, Verb.MANAGE, service=service, environment=environment).allowed


def clean_reason(reason: str, *, what: str = "marking a version bad") -> str:
    reason = reason.strip()
    if not reason:
        raise BadVersionError(f"Give a reason for {what}.")
    if len(reason) > MAX_REASON:
        raise BadVersionError(f"The reason is longer than {MAX_REASON} characters.")
    return reason


def mark_bad(
    *,
    user: User | None,
    service: Service,
    environment: Environment,
    sha: str,
    reason: str,
    deployment: Deployment | None = None,
) -> Marked:
    """Mark a registered version of `service` bad in `environment` (rule 3). user None: Apollo.

    Idempotent: a version bad already keeps its mark (returned, created False). Raises
    PermissionDenied without `cancel`, BadVersionError on a missing reason or an unknown sha."""
    if user is not None:
        decision = explain(user, Verb.CANCEL, service=service, environment=environment)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
    reason = clean_reason(reason)
    if not DeployableVersion.objects.filter(service=service, git_commit_sha=sha).exists():
        raise BadVersionError(f"{service.name} has no registered version {sha[:40]}.")
    existing = mark_in_force(service=service, environment=environment, sha=sha)
    if existing is not None:
        return Marked(existing, created=False)
    try:
        with transaction.atomic():  # a savepoint: a concurrent mark wins the unique index
            mark = BadVersion.objects.create(
                service=service,
                environment=environment,
                sha=sha,
                reason=reason,
                marked_by=user,
                deployment=deployment,
            )
            record_event(
                actor=user,
                action="version.marked_bad",
                target=mark,
                summary=f"marked {service.name}@{sha[:12]} bad in {environment.name}: {reason}",
                data={"sha": sha, "reason": reason, "deployment": deployment and deployment.pk},
            )
            notify.marked_bad(mark)
    except IntegrityError:
        raced = mark_in_force(service=service, environment=environment, sha=sha)
        if raced is None:
            raise
        return Marked(raced, created=False)
    return Marked(mark, created=True)


def unmark(*, user: User, mark: BadVersion, reason: str) -> BadVersion:
    """Undo a mark in force (rule 3): `manage` and a reason. Raises PermissionDenied,
    BadVersionError (no reason, or unmarked already: the loser of two concurrent unmarks)."""
    decision = explain(user, Verb.MANAGE, service=mark.service, environment=mark.environment)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
    reason = clean_reason(reason, what="unmarking a version")
    now = timezone.now()
    with transaction.atomic():
        updated = BadVersion.objects.filter(pk=mark.pk, unmarked_at__isnull=True).update(
            unmarked_at=now, unmarked_by=user, unmark_reason=reason
        )
        if updated != 1:
            raise BadVersionError(f"version {mark.sha[:12]} is not marked bad any more.")
        mark.unmarked_at, mark.unmarked_by, mark.unmark_reason = now, user, reason
        record_event(
            actor=user,
            action="version.unmarked",
            target=mark,
            summary=f"unmarked {mark.service.name}@{mark.sha[:12]} in "
            f"{mark.environment.name}: {reason}",
            data={"sha": mark.sha, "reason": reason},
        )
    return mark


def record_override(*, user: User, deployment: Deployment, reason: str) -> None:
    """History of a bad version deployed past its mark (the request's transaction)."""
    sha = deployment.version.git_commit_sha
    record_event(
        actor=user,
        action="version.bad_overridden",
        target=deployment,
        summary=f"deployed {deployment.service.name}@{sha[:12]}, marked bad in "
        f"{deployment.environment.name}, overriding with: {reason}",
        data={"sha": sha, "override_reason": reason},
    )
