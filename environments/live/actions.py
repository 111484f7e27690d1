"""The action controls of the environment page, per viewer: restart a pod, its logs, a shell
into it, the logs of all pods of a service, a rolling restart, scaling a group.

The rule (issue 13), written once for the page and its live updates:
1. A control is hidden when the viewer holds its verb nowhere (mallory sees no page at all;
   carol, who may only view and read logs, sees no restart, scale or shell).
2. It is disabled, with the server's own refusal beside it, when the viewer holds the verb
   elsewhere but not here (the gate's sentence: `environments.services.require_here` for a
   pod, `require` for a service), or when the action is refused now: a deployment of the
   target in progress, a scaling lock, a blocker in scope.
3. Otherwise it is enabled; the server checks again on the click.

`viewer_gate` asks the database (the socket keeps its answer for a minute); `row_controls`
is pure: the gate and the live entry in, a Control per action out (deployments.controls).
"""

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied

from deployments.controls import ALLOWED, HIDDEN, Control, disabled
from deployments.models import Group, Service
from deployments.services.groups import (
    busy_refusal,
    group_where,
    lock_refusal,
    scaling_blocked_reason,
)
from environments import services
from environments.models import Environment
from permissions.selectors import allowed_targets
from permissions.services import can
from permissions.verbs import Verb

VERBS = (Verb.RESTART, Verb.VIEW_LOGS, Verb.EXEC)
ACTIONS = ("restart_pod", "pod_logs", "shell", "logs", "rolling_restart", "scale")


@dataclass
class ServiceGate:
    """What the gate says of one service in one environment for one viewer."""

    pod: dict[str, Control] = field(default_factory=dict)  # verb -> control, pod actions
    service: dict[str, Control] = field(default_factory=dict)  # verb -> control
    restart_blocked: dict[str, str] = field(default_factory=dict)  # group -> blockers' refusal
    scale_blocked: dict[str, str] = field(default_factory=dict)

    @classmethod
    def allowing(cls, *verbs: Verb) -> "ServiceGate":
        """A gate that allows exactly these verbs and hides the rest (tests, first paint)."""
        controls = {verb.value: ALLOWED for verb in verbs}
        return cls(pod=dict(controls), service=dict(controls))


def _refusal(check: Any, *args: Any, **kwargs: Any) -> str:
    """The PermissionDenied sentence a service's check raises, "" when it passes."""
    try:
        check(*args, **kwargs)
    except PermissionDenied as exc:
        return str(exc)
    return ""


def viewer_gate(
    user: User | AnonymousUser, environment: Environment, names: set[str]
) -> dict[str, ServiceGate]:
    """The gate for the services `names` of the environment: one read of the user's grants
    per verb; the gate's sentence is asked only for a refused service whose verb the viewer
    holds elsewhere, and the blockers only where the viewer may restart."""
    ids = dict(Service.objects.filter(name__in=names).values_list("name", "pk"))
    gates = {name: ServiceGate() for name in names}
    for verb in VERBS:
        pairs = allowed_targets(user, verb)
        here = {s for s, e in pairs if e == environment.pk}
        holds_somewhere = bool(pairs) or can(user, verb, environment=environment)
        pod_refusal = _refusal(services.require_here, user, verb, environment=environment)
        # A workload no Apollo service claims: environment-wide grants only.
        unclaimed = can(user, verb, environment=environment) if names - ids.keys() else False
        for name, gate in gates.items():
            if not holds_somewhere:
                gate.pod[verb.value] = gate.service[verb.value] = HIDDEN
                continue
            service = Service(pk=ids[name], name=name) if name in ids else None
            allowed = (ids[name] in here) if name in ids else unclaimed
            why = "" if allowed else _service_refusal(user, verb, environment, service)
            gate.service[verb.value] = ALLOWED if allowed else disabled(why)
            gate.pod[verb.value] = (
                disabled(pod_refusal) if pod_refusal else gate.service[verb.value]
            )
    _blockers(user, environment, gates, ids)
    return gates


def _service_refusal(
    user: User | AnonymousUser, verb: Verb, environment: Environment, service: Service | None
) -> str:
    return _refusal(services.require, user, verb, environment=environment, service=service)


def _blockers(
    user: User | AnonymousUser,
    environment: Environment,
    gates: dict[str, ServiceGate],
    ids: dict[str, int],
) -> None:
    """Blockers that refuse a rolling restart or a scaling, where the viewer may restart."""
    mayrestart = {name for name, gate in gates.items() if gate.service[Verb.RESTART].allowed}
    if not mayrestart & ids.keys():
        return
    groups = Group.objects.filter(
        environment=environment, service__name__in=mayrestart
    ).select_related("service", "environment")
    by_service: dict[str, list[Group]] = {}
    for group in groups:
        by_service.setdefault(group.service.name, []).append(group)
    rows = Service.objects.filter(name__in=mayrestart & ids.keys())
    for service in sorted(rows, key=lambda s: s.name):
        name, gate = service.name, gates[service.name]
        for key in ["", *(g.name for g in by_service.get(name, []))]:
            gate.restart_blocked[key] = services.restart_blocked_reason(
                user, environment=environment, service=service, group=key
            )
        for group in by_service.get(name, []):
            gate.scale_blocked[group.name] = scaling_blocked_reason(user, group)


def row_controls(
    entry: dict[str, Any], gate: ServiceGate | None, environment: Environment
) -> dict[str, Control]:
    """Every action of one service's row of the environment page, as a Control."""
    gate = gate or ServiceGate()
    restart = gate.service.get(Verb.RESTART, HIDDEN)
    return {
        "restart_pod": gate.pod.get(Verb.RESTART, HIDDEN),
        "pod_logs": gate.pod.get(Verb.VIEW_LOGS, HIDDEN),
        "shell": gate.pod.get(Verb.EXEC, HIDDEN),
        "logs": gate.service.get(Verb.VIEW_LOGS, HIDDEN),
        "rolling_restart": _rolling_restart(entry, gate, restart),
        "scale": _scale(entry, gate, restart, environment),
    }


def _rolling_restart(entry: dict[str, Any], gate: ServiceGate, restart: Control) -> Control:
    if not restart.allowed:
        return restart
    if entry.get("in_progress_id"):
        return disabled(services.restart_busy_reason(entry["service"], entry["group"]))
    blocked = gate.restart_blocked.get(entry["group"], "")
    return disabled(blocked) if blocked else ALLOWED


def _scale(
    entry: dict[str, Any], gate: ServiceGate, restart: Control, environment: Environment
) -> Control:
    if not entry.get("group_id"):
        return HIDDEN  # not a group: nothing to scale here
    if not restart.allowed:
        return restart
    where = group_where(entry["service"], entry["group"], environment.name)
    if entry.get("scaling_locked"):
        return disabled(lock_refusal(where=where, reason=entry.get("scaling_lock_reason", "")))
    if entry.get("in_progress_id"):
        return disabled(busy_refusal(where=where))
    blocked = gate.scale_blocked.get(entry["group"], "")
    return disabled(blocked) if blocked else ALLOWED
