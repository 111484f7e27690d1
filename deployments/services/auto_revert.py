"""Automatic revert on failed health (issue #14, part 2).

When a rollout ends FAILED, Deployment.transition_to calls `on_failed` in the transaction of
the status change (as it writes the notifications' outbox). The rule, in order:

1. The policy: the service's own RevertPolicy in the environment, else the environment's; none,
   nothing happens.
2. A FAILED verdict on a cluster Apollo could not reach says nothing about the version: nothing
   is marked or reverted. Only a rollout that failed (STARTED -> FAILED) counts: a failed
   rollback of a cancel is not a verdict on the version.
3. policy.mark_bad: the failed version is marked bad in the environment, by Apollo.
4. policy.enabled: Apollo requests the revert to the last DONE version of the target, as the
   system user, with the failed deployment as its `cause`, through the deploy service (blockers
   and bad versions apply; policy.may_pass_blockers lets it past overridable blockers), except:
   never a revert of a revert (the failed deployment has a cause: no loops); never to a version
   marked bad, nor to one whose DONE is older than policy.max_age; never a second revert of one
   failure (AutomaticRevert.failed is unique) nor while a deployment of the target is in
   progress (the one-in-progress constraint).
5. What was decided, revert or why not, is kept (AutomaticRevert) and shown on the failed
   deployment's page; history records it.
"""

import logging

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.timesince import timesince

from deployments.models import AutomaticRevert, Deployment, RevertPolicy
from deployments.notifications import events as notify
from deployments.services import bad_versions
from deployments.services.deploy import AsSystem, request_deployment
from deployments.status import Status
from history.services import record_event

logger = logging.getLogger(__name__)

# SECURITY: the user automatic reverts are attributed to. A colon is not allowed in user names
# (Django's validator, the admin, single sign-on): nobody can sign up or sign in as it; it is
# inactive, has no usable password and holds no grant.
SYSTEM_USERNAME = "apollo:system"


def system_user() -> User:
    user, created = User.objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": False, "first_name": "Apollo", "last_name": "(automatic)"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def policy_for(deployment: Deployment) -> RevertPolicy | None:
    """The service's own policy in the environment, else the environment's (rule 1)."""
    policies = RevertPolicy.objects.filter(
        environment_id=deployment.environment_id, service_id=deployment.service_id
    ) | RevertPolicy.objects.filter(environment_id=deployment.environment_id, service__isnull=True)
    # The service's own first (NULLs sort last in ascending order on PostgreSQL and first on
    # SQLite: ordered explicitly instead).
    return sorted(policies, key=lambda p: p.service_id is None)[0] if policies else None


def on_failed(deployment: Deployment, *, was: Status) -> None:
    """Called by Deployment.transition_to when `deployment` became FAILED (from `was`), in the
    transaction of that change. A failure here is logged and undone to a savepoint: it never
    undoes or stops the FAILED verdict."""
    if was != Status.STARTED or not RevertPolicy.objects.exists():
        return
    try:
        with transaction.atomic():
            _decide(Deployment.objects.with_related().get(pk=deployment.pk))
    except Exception:
        logger.exception("the automatic revert of deployment %s was not decided", deployment.pk)


def _decide(failed: Deployment) -> None:
    policy = policy_for(failed)
    if policy is None or not (policy.enabled or policy.mark_bad):
        return
    if "unreachable" in failed.status_reason:  # rule 2, as the worker words it
        if policy.enabled:
            _keep(
                failed,
                None,
                "Not reverted: the cluster was unreachable, which says nothing about the version.",
            )
        return
    if policy.mark_bad:
        bad_versions.mark_bad(
            user=None,
            service=failed.service,
            environment=failed.environment,
            sha=failed.version.git_commit_sha,
            reason=f"deployment #{failed.pk} ended FAILED: {failed.status_reason or 'no reason'}",
            deployment=failed,
        )
    if policy.enabled:
        revert, why = _revert(failed, policy)
        _keep(failed, revert, why)


def _revert(failed: Deployment, policy: RevertPolicy) -> tuple[Deployment | None, str]:
    """The revert requested (and why), or None and why not (rule 4)."""
    if failed.cause_id is not None:
        return None, (
            f"Not reverted: #{failed.pk} was itself a revert of #{failed.cause_id}; Apollo never "
            "reverts a revert."
        )
    target = failed.source_deployment()
    if target is None or target.version_id == failed.version_id:
        return None, "Not reverted: no other version ran here before, nothing to go back to."
    sha = target.version.git_commit_sha
    mark = bad_versions.mark_in_force(
        service=failed.service, environment=failed.environment, sha=sha
    )
    if mark is not None:
        described = bad_versions.describe(mark, environment=failed.environment)
        return None, f"Not reverted: the last DONE {described}."
    finished = target.finished_at or target.created_at
    if policy.max_age is not None and timezone.now() - finished > policy.max_age:
        return None, (
            f"Not reverted: the last DONE version {sha[:12]} (#{target.pk}) finished "
            f"{timesince(finished)} ago, longer ago than the policy allows "
            f"({timesince(finished - policy.max_age, finished)})."
        )
    why_failed = failed.status_reason or "no reason given"
    passing = "the revert policy lets the automatic revert pass blockers"
    outcome = request_deployment(
        user=system_user(),
        service=failed.service,
        environment=failed.environment,
        version=target.version,
        group=failed.group,
        message=f"Automatic revert of #{failed.pk}: its rollout ended FAILED ({why_failed})",
        recorded=target,
        cause=failed,
        system=AsSystem(pass_blockers=passing if policy.may_pass_blockers else ""),
    )
    if outcome.deployment is None:
        return None, f"Not reverted: the revert to {sha[:12]} was refused: {outcome.reason}."
    notify.deployment_event(
        deployment=outcome.deployment, event=notify.Event.REVERTED, note=f"revert of #{failed.pk}"
    )
    return outcome.deployment, (
        f"Reverted automatically to {sha[:12]} (the last DONE, #{target.pk}) because the "
        f"rollout ended FAILED: {why_failed}"
    )


def _keep(failed: Deployment, revert: Deployment | None, why: str) -> None:
    try:
        with transaction.atomic():
            AutomaticRevert.objects.create(failed=failed, revert=revert, explanation=why)
    except IntegrityError:  # decided already (rule 4: one automatic revert per failure)
        if revert is not None:
            raise
        return
    record_event(
        actor=None,
        action="deployment.auto_reverted" if revert is not None else "deployment.not_auto_reverted",
        target=failed,
        summary=why,
        data={"revert": revert.pk if revert is not None else None},
    )
