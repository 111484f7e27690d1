"""Groups of a service in an environment: define, change, remove, scale without redeploying.

Defining a group (create, update, delete, lock) needs the `manage` verb on the (service,
environment); scaling needs `restart`, like the other pod actions. Every change is recorded in
history by the function that makes it, in the same transaction.

Scaling (`scale_group`) is refused when:
- the group's scaling is locked (`Group.scaling_locked`, with the reason shown);
- a deployment of the group is in progress (its manifests carry the old replica count, and the
  rollout's health check compares against the desired count);
- a blocker refuses. Blockers judge deployments of a version, so scaling is evaluated as a
  deployment of the version the group runs now (its last DONE deployment): a freeze
  (unconditional or time window) therefore also freezes scaling, a concurrency limit counts the
  deployments in progress in the environment, and version-based kinds (branch, CI status,
  promotion) judge the running version. Scaling cannot override blockers: deploy with an
  override reason instead, or ask an admin to lift the blocker.

A group Apollo never deployed has no Kubernetes Deployment yet: scaling it only stores the new
scaling factor, which the first deployment applies.
"""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from deployments import rendering
from deployments.manifests import SAMPLE_SHA, render_for
from deployments.models import (
    MAX_SCALING_FACTOR,
    DeployableVersion,
    Deployment,
    Group,
    Service,
    validate_group_variables,
)
from environments import kube
from environments import services as environment_services
from environments.models import Environment
from history.services import record_event
from permissions import blockers
from permissions.services import explain
from permissions.verbs import Verb

DNS_LABEL_MAX = 63
Actor = User | AnonymousUser | None  # None: the system (seeding, migrations)


class ScalingRefused(ValueError):
    """Scaling is locked, blocked or cannot happen now; the message says why.

    A ValueError, like an out-of-range replica count, so callers that report "cannot scale:
    <why>" for one report the other the same way."""


def _require(user: Actor, verb: Verb, *, service: Service, environment: Environment) -> None:
    if user is None:
        return
    decision = explain(user, verb, service=service, environment=environment)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)


def may_manage(user: User | AnonymousUser, *, service: Service, environment: Environment) -> bool:
    return explain(user, Verb.MANAGE, service=service, environment=environment).allowed


# -- defining groups --------------------------------------------------------------------------


def create_group(
    *,
    user: Actor,
    service: Service,
    environment: Environment,
    name: str,
    scaling_factor: int = 1,
    variables: dict[str, Any] | None = None,
) -> Group:
    """Raises PermissionDenied without `manage`, ValidationError (per field) when invalid,
    including templates that do not render with the group's variables."""
    _require(user, Verb.MANAGE, service=service, environment=environment)
    group = Group(
        service=service,
        environment=environment,
        name=name.strip(),
        scaling_factor=scaling_factor,
        variables=variables if variables is not None else {},
    )
    validate_group(group)
    with transaction.atomic():
        group.save()
        record_event(
            actor=user,
            action="group.created",
            target=group,
            summary=f"Created group {_where(group)}",
            data={"scaling_factor": group.scaling_factor, "variables": group.variables},
        )
    return group


def update_group(
    *,
    user: Actor,
    group: Group,
    variables: dict[str, Any] | None = None,
    scaling_locked: bool | None = None,
    scaling_lock_reason: str | None = None,
) -> Group:
    """Change a group's variables (they apply at its next deployment) or its scaling lock.

    The scaling factor changes through `scale_group`, which also scales the cluster."""
    _require(user, Verb.MANAGE, service=group.service, environment=group.environment)
    before = {
        "variables": group.variables,
        "scaling_locked": group.scaling_locked,
        "scaling_lock_reason": group.scaling_lock_reason,
    }
    if variables is not None:
        group.variables = variables
    if scaling_locked is not None:
        group.scaling_locked = scaling_locked
    if scaling_lock_reason is not None:
        group.scaling_lock_reason = scaling_lock_reason.strip()
    if not group.scaling_locked:
        group.scaling_lock_reason = ""
    validate_group(group)
    after = {
        "variables": group.variables,
        "scaling_locked": group.scaling_locked,
        "scaling_lock_reason": group.scaling_lock_reason,
    }
    changed = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
    if not changed:
        return group
    with transaction.atomic():
        group.save(update_fields=["variables", "scaling_locked", "scaling_lock_reason"])
        record_event(
            actor=user,
            action="group.changed",
            target=group,
            summary=f"Changed {', '.join(sorted(changed))} of group {_where(group)}",
            data=changed,
        )
    return group


def delete_group(*, user: Actor, group: Group) -> None:
    """Remove a group Apollo never deployed. A deployed group stays: its deployments are
    history, and its Kubernetes objects would be left without an owner."""
    _require(user, Verb.MANAGE, service=group.service, environment=group.environment)
    count = Deployment.objects.filter(group=group).count()
    if count:
        raise ValidationError(
            f"Group {group.name} has {count} deployment(s) in history and cannot be removed; "
            "lock its scaling instead."
        )
    with transaction.atomic():
        record_event(
            actor=user,
            action="group.deleted",
            target=group,
            summary=f"Removed group {_where(group)}",
            data={"scaling_factor": group.scaling_factor, "variables": group.variables},
        )
        group.delete()


def validate_group(group: Group) -> None:
    """Field validation, then: the service's templates render with these variables."""
    group.full_clean()
    validate_group_variables(group.variables)
    sample = DeployableVersion(service=group.service, git_commit_sha=SAMPLE_SHA)
    try:
        documents = render_for(
            service=group.service, environment=group.environment, version=sample, group=group
        )
    except rendering.RenderError as exc:
        raise ValidationError(
            {"variables": f"The templates of {group.service.name} do not render: {exc}"}
        ) from None
    # The group suffixes every manifest name; Kubernetes refuses names longer than a DNS label.
    too_long = sorted(
        name for name in (d["metadata"]["name"] for d in documents) if len(name) > DNS_LABEL_MAX
    )
    if too_long:
        raise ValidationError(
            {
                "name": f"With this group name the manifest names exceed {DNS_LABEL_MAX} "
                f"characters: {', '.join(too_long)}."
            }
        )


def _where(group: Group) -> str:
    return group_where(group.service.name, group.name, group.environment.name)


def group_where(service: str, group: str, environment: str) -> str:
    return f"{service}/{group} in {environment}"


# -- scaling ----------------------------------------------------------------------------------


def running_version(group: Group) -> DeployableVersion | None:
    """The version of the group's last successful deployment."""
    last = Deployment.objects.filter(group=group).last_done().select_related("version").first()
    return last.version if last is not None else None


def scaling_refusal(user: User | AnonymousUser, group: Group) -> str:
    """Why scaling this group is refused now (lock, deployment in progress, blockers), or ""."""
    if group.scaling_locked:
        return scaling_lock_reason(group)
    if Deployment.objects.in_progress().filter(group=group).exists():
        return scaling_busy_reason(group)
    return scaling_blocked_reason(user, group)


def scaling_lock_reason(group: Group) -> str:
    return lock_refusal(where=_where(group), reason=group.scaling_lock_reason)


def lock_refusal(*, where: str, reason: str) -> str:
    """The refusal of a locked group's scaling ("<service>/<group> in <environment>"): the
    environment page says it beside the disabled Scale, from the live state, in these words."""
    why = f": {reason}" if reason else ""
    return f"scaling of {where} is locked{why}"


def scaling_busy_reason(group: Group) -> str:
    return busy_refusal(where=_where(group))


def busy_refusal(*, where: str) -> str:
    return f"a deployment of {where} is in progress; scale it when it has finished"


def scaling_blocked_reason(user: User | AnonymousUser, group: Group) -> str:
    """The blockers in scope that refuse the version the group runs, named with their reasons."""
    version = running_version(group)
    if version is None:
        return ""
    refusals = blockers.evaluate(
        user=user,
        service=group.service,
        environment=group.environment,
        version=version,
        group=group,
    )
    return "; ".join(f"blocked by {r.name}: {r.reason}" for r in refusals)


def scale_group(*, user: User, group: Group, replicas: int) -> str:
    """Scale a group's Deployment (the `scale` subresource) and keep the new scaling factor.

    Returns the Kubernetes Deployment's name ("" when the group was never deployed). Raises
    PermissionDenied without `restart`, ScalingRefused (a ValueError) when locked or blocked,
    ValueError for a replica count out of range, environments.services.NotFound when the group
    does not run in the cluster, kube errors when the cluster refuses."""
    group = Group.objects.select_related("service", "environment__cluster").get(pk=group.pk)
    _require(user, Verb.RESTART, service=group.service, environment=group.environment)
    if not 0 <= replicas <= MAX_SCALING_FACTOR:
        raise ValueError(f"replicas must be between 0 and {MAX_SCALING_FACTOR}")
    refusal = scaling_refusal(user, group)
    if refusal:
        raise ScalingRefused(refusal)
    if running_version(group) is None:
        return _store_scaling_factor(user, group, replicas)
    return _scale_in_cluster(user, group, replicas)


def _scale_in_cluster(user: User, group: Group, replicas: int) -> str:
    """The `scale` subresource of the group's Deployment, then the new scaling factor for
    later deployments and its history event (the gate was asked by scale_group)."""
    environment = group.environment
    name = environment_services.deployment_name(environment, group.service, group.name)
    kube.scale_deployment(environment.cluster, environment.namespace, name, replicas=replicas)
    with transaction.atomic():
        before = Group.objects.select_for_update().get(pk=group.pk).scaling_factor
        Group.objects.filter(pk=group.pk).update(scaling_factor=replicas)
        record_event(
            actor=user,
            action="group.scaled",
            summary=f"Scaled {group.service.name}/{group.name} in {environment.name} "
            f"from {before} to {replicas}",
            target=group,
            data={"deployment": name, "before": before, "after": replicas},
        )
    group.scaling_factor = replicas
    return name


def _store_scaling_factor(user: User, group: Group, replicas: int) -> str:
    with transaction.atomic():
        before = Group.objects.select_for_update().get(pk=group.pk).scaling_factor
        Group.objects.filter(pk=group.pk).update(scaling_factor=replicas)
        record_event(
            actor=user,
            action="group.scaled",
            summary=f"Set the scaling factor of {_where(group)} from {before} to {replicas} "
            "(not deployed yet: the first deployment applies it)",
            target=group,
            data={"deployment": "", "before": before, "after": replicas},
        )
    group.scaling_factor = replicas
    return ""
