"""Pod actions on a running environment: restart a pod, rolling restart, scale a group.

Each service checks the gate itself (pages and any future API call the same function), makes
the Kubernetes call outside any transaction, then records history. A refused or failed action
raises; nothing is recorded for an action that did not happen.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import transaction

from deployments.models import Deployment, Service
from environments import kube, owners
from environments.kube.labels import LABEL_SERVICE, MANAGED_BY
from environments.models import Environment
from environments.names import InvalidName, check_object_name
from history.services import describe, record_change, record_event
from permissions.blockers import evaluate as evaluate_blockers
from permissions.removal import retire_rights
from permissions.selectors import services_for
from permissions.services import can, explain
from permissions.verbs import Verb

Obj = dict[str, Any]


class NotFound(Exception):
    """The pod, service or group is not in this environment."""


class RestartRefused(ValueError):
    """A rolling restart refused by a blocker or by a deployment in progress (the reason says
    which, as scaling's ScalingRefused does)."""


@dataclass(frozen=True)
class PodTarget:
    """A pod and the Apollo service it belongs to (None for a pod Apollo did not deploy)."""

    pod: Obj
    service: Service | None
    group: str

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])


def find_pod(environment: Environment, name: str) -> PodTarget:
    """The pod and its service. Raises names.InvalidName (a ValueError) for a name Kubernetes
    would refuse, before the cluster is asked; NotFound when there is no such pod."""
    check_object_name(name, what="pod")
    pod = kube.read_pod(environment.cluster, environment.namespace, name)
    if pod is None:
        raise NotFound(f"pod {name} is not in {environment.name}")
    target = _owner_chain_target(environment, pod)
    if target is None:
        return PodTarget(pod=pod, service=None, group="")
    service = Service.objects.filter(name=target[0]).first()
    return PodTarget(pod=pod, service=service, group=target[1] if service else "")


def _owner_chain_target(environment: Environment, pod: Obj) -> owners.Target | None:
    """SECURITY: the pod's service from its owner chain (environments.owners), not a label."""
    cluster, namespace = environment.cluster, environment.namespace
    ref = owners.controller(pod, "ReplicaSet")
    try:
        replica_set = ref and kube.read_replica_set(cluster, namespace, str(ref.get("name")))
        ref = owners.controller(replica_set or {}, "Deployment")
        deployment = ref and kube.read_deployment(cluster, namespace, str(ref.get("name")))
    except InvalidName:  # a reference no Kubernetes object can have: no owner
        return None
    return owners.pod_target(pod, replica_set or None, deployment or None)


def require(
    user: User | AnonymousUser, verb: Verb, *, environment: Environment, service: Service | None
) -> None:
    """Raise PermissionDenied with the gate's reason unless the user may do the verb."""
    decision = explain(user, verb, service=service, environment=environment)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)


def may_act_here(user: User | AnonymousUser, verb: Verb, *, environment: Environment) -> bool:
    """May the user do the verb to the environment itself or to at least one service in it?

    SECURITY: asked before a pod is read, because which service a pod belongs to is only known
    from the cluster: a user who may act nowhere in this environment makes Apollo ask the
    cluster nothing. The exact question (this pod's service) is asked once the pod is known."""
    if can(user, verb, environment=environment):
        return True
    return services_for(user, verb, environment=environment).exists()


def require_here(user: User | AnonymousUser, verb: Verb, *, environment: Environment) -> None:
    """PermissionDenied unless may_act_here; the reason names the verb and the environment."""
    if not may_act_here(user, verb, environment=environment):
        raise PermissionDenied(f"You hold no {verb.value} permission in {environment.name}.")


def restart_pod(*, user: User, environment: Environment, pod_name: str) -> PodTarget:
    check_object_name(pod_name, what="pod")
    require_here(user, Verb.RESTART, environment=environment)
    target = find_pod(environment, pod_name)
    require(user, Verb.RESTART, environment=environment, service=target.service)
    kube.delete_pod(environment.cluster, environment.namespace, target.name)
    with transaction.atomic():
        record_event(
            actor=user,
            action="pod.restarted",
            summary=f"Restarted pod {target.name} in {environment.name}",
            target=environment,
            service=target.service,
            data={"pod": target.name, "service": _name(target.service), "group": target.group},
        )
    return target


def rollout_restart(
    *, user: User, environment: Environment, service: Service, group: str = ""
) -> str:
    """What `kubectl rollout restart deployment/<name>` does; returns the Deployment's name.

    Raises PermissionDenied without `restart`, RestartRefused when a blocker refuses it (as
    it refuses scaling: the blockers in scope are asked about the running version) or a
    deployment of the target is in progress, NotFound when it does not run here."""
    require(user, Verb.RESTART, environment=environment, service=service)
    refusal = restart_refusal(user, environment=environment, service=service, group=group)
    if refusal:
        raise RestartRefused(refusal)
    name = deployment_name(environment, service, group)
    at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    kube.restart_deployment(environment.cluster, environment.namespace, name, at=at)
    where = f"{service.name}/{group}" if group else service.name
    with transaction.atomic():
        record_event(
            actor=user,
            action="service.restarted",
            summary=f"Rolling restart of {where} in {environment.name}",
            target=environment,
            service=service,
            data={"service": service.name, "group": group, "deployment": name, "at": at},
        )
    return name


def restart_refusal(
    user: User | AnonymousUser, *, environment: Environment, service: Service, group: str
) -> str:
    """Why a rolling restart of the service (or its group) is refused now, or "".

    The same gate as scaling a group (deployments.services.groups.scaling_refusal): not while
    a deployment of it is in progress, and not when a blocker in scope refuses the version
    that runs (its last successful deployment), naming each blocker and its reason."""
    mine = Deployment.objects.filter(service=service, environment=environment, group_key=group)
    if mine.in_progress().exists():
        return restart_busy_reason(service.name, group)
    return restart_blocked_reason(user, environment=environment, service=service, group=group)


def restart_busy_reason(service_name: str, group: str) -> str:
    """The refusal while a deployment of the target is in progress (the environment page says
    it beside the disabled button, from the live state, in these words)."""
    where = f"{service_name}/{group}" if group else service_name
    return f"a deployment of {where} is in progress; restart it when it has finished"


def restart_blocked_reason(
    user: User | AnonymousUser, *, environment: Environment, service: Service, group: str
) -> str:
    """The blockers in scope that refuse the version that runs, named with their reasons."""
    mine = Deployment.objects.filter(service=service, environment=environment, group_key=group)
    running = mine.last_done().select_related("version", "group").first()
    if running is None:
        return ""
    refusals = evaluate_blockers(
        user=user,
        service=service,
        environment=environment,
        version=running.version,
        group=running.group,
    )
    return "; ".join(f"blocked by {r.name}: {r.reason}" for r in refusals)


def deployment_name(environment: Environment, service: Service, group: str) -> str:
    selector = f"{MANAGED_BY}=apollo,{LABEL_SERVICE}={service.name}"
    items, _ = kube.list_objects(
        environment.cluster, "Deployment", environment.namespace, label_selector=selector
    )
    # SECURITY: only a Deployment Apollo applied (environments.owners), not any so labelled.
    names = [
        item["metadata"]["name"]
        for item in items
        if owners.apollo_target(item) == (service.name, group)
    ]
    if not names:
        where = f"{service.name}/{group}" if group else service.name
        raise NotFound(f"{where} is not running in {environment.name}")
    return str(names[0])


def _name(service: Service | None) -> str:
    return service.name if service is not None else ""


@transaction.atomic
def delete_environment(*, actor: User | AnonymousUser | None, environment: Environment) -> None:
    """Delete an environment; its grants and blockers are revoked first, each recorded."""
    reason = f"environment '{environment}' was deleted"
    retire_rights(actor=actor, reason=reason, environment=environment)
    record_change(
        actor=actor,
        kind="environment",
        target=environment,
        before=describe(environment),
        after=None,
    )
    environment.delete()
