"""Blockers: which active blockers refuse a deployment request right now, and why.

``evaluate`` reads every blocker in scope in one query, then checks each kind against facts
about the request that are loaded lazily, at most one query per kind of fact, whatever the
number of blockers (``_Facts``). It never writes.

Fail closed: a blocker whose configuration does not parse, or whose check raises, refuses with
"Blocker 'X' (kind) cannot be evaluated: <why>; it blocks until fixed".

Exemptions and overrides: users listed as exempt on a blocker get no refusal from it. Other
users who hold ``override_blockers`` (``can_override``) may deploy past overridable refusals
by giving a reason; the deploy flow (deployments.services.deploy.request_deployment) stores
the reason and the refusals it overrode with the deployment and its history event.
"""

import fnmatch
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AnonymousUser, User
from django.db import connections, transaction
from django.db.models import Exists, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from deployments.models import CIStatus, DeployableVersion, Deployment, Group, Service
from deployments.status import Status
from environments.models import Environment
from history.services import record_event
from permissions import blocker_config as bc
from permissions.models import Blocker
from permissions.services import can
from permissions.verbs import Verb

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    blocker_id: int
    name: str
    kind: str
    reason: str
    overridable: bool


@dataclass(frozen=True)
class _Request:
    service: Service
    environment: Environment
    version: DeployableVersion
    group: Group | None
    now: datetime


class _Facts:
    """Database facts about one request, each loaded at most once (one query) when needed."""

    def __init__(self, request: _Request) -> None:
        self.request = request

    @cached_property
    def in_progress_here(self) -> list[str]:
        """Service names of deployments in progress in the target environment."""
        rows = Deployment.objects.in_progress().filter(environment=self.request.environment)
        return list(rows.values_list("service__name", flat=True))

    @cached_property
    def in_progress_in_other_regions(self) -> list[str]:
        """Other environments of the same availability where this service is in progress."""
        env = self.request.environment
        rows = (
            Deployment.objects.in_progress()
            .filter(service=self.request.service, environment__availability=env.availability)
            .exclude(environment=env)
            .values_list("environment__name", flat=True)
            .distinct()
        )
        return sorted(rows)

    @cached_property
    def environment_names(self) -> set[str]:
        return set(Environment.objects.values_list("name", flat=True))

    @cached_property
    def ci_states(self) -> dict[str, str]:
        rows = CIStatus.objects.filter(version=self.request.version)
        return dict(rows.values_list("context", "state"))

    @cached_property
    def first_success_by_environment(self) -> dict[str, datetime]:
        """When this version first finished DONE in each environment."""
        rows = (
            Deployment.objects.filter(version=self.request.version, status=Status.DONE)
            .values("environment__name")
            .annotate(first=Min(Coalesce("finished_at", "updated_at")))
        )
        return {row["environment__name"]: row["first"] for row in rows}


def blockers_in_scope(
    *,
    user: User | AnonymousUser,
    service: Service,
    environment: Environment,
    group: Group | None = None,
) -> QuerySet[Blocker]:
    """Active blockers whose scope covers the request, annotated with the user's exemption.

    A blocker scoped to a group name covers only deployments (and scaling) of groups of that
    name; an ungrouped deployment is covered only by blockers without a group name."""
    exemption = Blocker.exempt_users.through.objects.filter(blocker_id=OuterRef("pk"))
    exemption = exemption.filter(user_id=user.pk) if user.is_authenticated else exemption.none()
    in_group = Q(group_name="")
    if group is not None:
        in_group |= Q(group_name=group.name)
    return (
        Blocker.objects.filter(active=True)
        .filter(Q(service__isnull=True) | Q(service=service))
        .filter(Q(environment__isnull=True) | Q(environment=environment))
        .filter(Q(availability="") | Q(availability=environment.availability))
        .filter(in_group)
        .annotate(is_exempt=Exists(exemption))
        .select_related("service", "environment")
        .order_by("name")
    )


def evaluate(
    *,
    user: User | AnonymousUser,
    service: Service,
    environment: Environment,
    version: DeployableVersion,
    group: Group | None = None,
    now: datetime | None = None,
) -> list[Refusal]:
    """Every blocker that refuses this deployment request now, each with a human reason."""
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be time zone aware")
    facts = _Facts(_Request(service, environment, version, group, now))
    refusals = []
    in_scope = blockers_in_scope(user=user, service=service, environment=environment, group=group)
    for blocker in in_scope:
        if blocker.is_exempt:  # type: ignore[attr-defined]
            continue
        refusal = _evaluate_one(blocker, facts)
        if refusal is not None:
            refusals.append(refusal)
    at_limit = _environment_limit(facts)
    return [*refusals, at_limit] if at_limit is not None else refusals


ENVIRONMENT_LIMIT = "environment concurrency limit"


def _environment_limit(facts: _Facts) -> Refusal | None:
    """The environment's own cap (Environment.concurrency_limit, 0: none) on deployments in
    progress at once, refused as a blocker would be, naming the ones in progress. Overridable
    with a reason by holders of override_blockers, as a concurrency blocker is."""
    env = facts.request.environment
    if not env.concurrency_limit or len(facts.in_progress_here) < env.concurrency_limit:
        return None
    running = ", ".join(sorted(facts.in_progress_here))
    reason = (
        f"Blocked by the {ENVIRONMENT_LIMIT} of {env}: at most {env.concurrency_limit} "
        f"deployments may be in progress there and {len(facts.in_progress_here)} are ({running})"
    )
    return Refusal(0, ENVIRONMENT_LIMIT, Blocker.Kind.CONCURRENCY.label, reason, True)


def _evaluate_one(blocker: Blocker, facts: _Facts) -> Refusal | None:
    kind_label = Blocker.Kind(blocker.kind).label if blocker.kind in Blocker.Kind else blocker.kind
    try:
        config = bc.parse(blocker.kind, blocker.config)
        why = _check(config, blocker, facts)
    except bc.ConfigError as exc:
        why = f"cannot be evaluated: {exc}; it blocks until fixed"
        return _refusal(blocker, kind_label, f"Blocker '{blocker.name}' ({kind_label}) {why}")
    except Exception as exc:  # fail closed, whatever went wrong
        logger.exception("blocker %s could not be evaluated", blocker.pk)
        why = f"cannot be evaluated: {type(exc).__name__}; it blocks until fixed"
        return _refusal(blocker, kind_label, f"Blocker '{blocker.name}' ({kind_label}) {why}")
    if why is None:
        return None
    return _refusal(blocker, kind_label, f"Blocked by '{blocker.name}' ({kind_label}): {why}")


def _refusal(blocker: Blocker, kind_label: str, reason: str) -> Refusal:
    return Refusal(blocker.pk, blocker.name, kind_label, reason, blocker.overridable)


def scope_phrase(blocker: Blocker) -> str:
    """ "deployments of checkout to production", as the subject of a refusal."""
    text = "deployments"
    if blocker.service_id is not None:
        text += f" of {blocker.service}"
    if blocker.environment_id is not None:
        text += f" to {blocker.environment}"
    elif blocker.availability:
        text += f" to {blocker.availability}"
    return text


def _check(config: bc.Config, blocker: Blocker, facts: _Facts) -> str | None:
    """The reason this blocker refuses the request, or None when it lets it through."""
    request = facts.request
    match config:
        case bc.Unconditional():
            return _check_unconditional(config, blocker, request)
        case bc.TimeWindow():
            return _check_time_window(config, blocker, request.now)
        case bc.BranchAllowList():
            return _check_branch(config, blocker, request)
        case bc.Concurrency():
            return _check_concurrency(config, facts)
        case bc.CIStatusRequired():
            return _check_ci_status(config, facts)
        case bc.SingleRegion():
            return _check_single_region(facts)
        case bc.Promotion():
            return _check_promotion(config, facts)
    raise bc.ConfigError(f"no check for {type(config).__name__}")


def _check_unconditional(
    config: bc.Unconditional, blocker: Blocker, request: _Request
) -> str | None:
    if request.service.name in config.except_services:
        return None
    if request.environment.name in config.except_environments:
        return None
    return f"{scope_phrase(blocker)} are blocked"


def in_window(window: bc.TimeWindow, now: datetime) -> bool:
    """Whether now falls in the window, read on the window's wall clock (DST-aware).

    A window that crosses midnight belongs to the day it starts on: Friday 22:00-02:00 covers
    Friday 22:00 to Saturday 02:00:59. The end minute is inclusive, so 12:00-23:59 lasts until
    midnight.
    """
    local = now.astimezone(ZoneInfo(window.timezone))
    minute = local.replace(second=0, microsecond=0).time()
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    if not window.crosses_midnight:
        return today in window.days and window.start <= minute <= window.end
    late_part = today in window.days and minute >= window.start
    early_part = yesterday in window.days and minute <= window.end
    return late_part or early_part


def describe_days(days: tuple[int, ...]) -> str:
    if len(days) == 7:
        return "every day"
    names = [bc.DAY_NAMES[d] + "s" for d in days]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _check_time_window(config: bc.TimeWindow, blocker: Blocker, now: datetime) -> str | None:
    if not in_window(config, now):
        return None
    span = f"{config.start:%H:%M}–{config.end:%H:%M}"  # noqa: RUF001 (a typographic range)
    when = f"{describe_days(config.days)} {span} {config.timezone}"
    return f"{scope_phrase(blocker)} are blocked on {when}"


def _check_branch(config: bc.BranchAllowList, blocker: Blocker, request: _Request) -> str | None:
    branch = request.version.branch
    if branch and any(fnmatch.fnmatchcase(branch, p) for p in config.patterns):
        return None
    allowed = " or ".join(config.patterns)
    on = f"is on branch '{branch}'" if branch else "has no branch"
    return f"{scope_phrase(blocker)} must come from {allowed}; {request.version} {on}"


def _check_concurrency(config: bc.Concurrency, facts: _Facts) -> str | None:
    counted = [s for s in facts.in_progress_here if s not in config.except_services]
    if len(counted) < config.max_in_progress:
        return None
    env = facts.request.environment
    running = ", ".join(sorted(counted))
    return (
        f"at most {config.max_in_progress} deployments may be in progress in {env} "
        f"and {len(counted)} are ({running})"
    )


def _check_ci_status(config: bc.CIStatusRequired, facts: _Facts) -> str | None:
    states, version = facts.ci_states, facts.request.version
    contexts = config.required_contexts or tuple(states)
    if not contexts:
        return f"{version} has no CI status; CI must report a passing one first"
    problems = [
        f"{c} has not reported" if c not in states else f"{c} is {states[c]}"
        for c in contexts
        if states.get(c) != CIStatus.State.SUCCESS
    ]
    if not problems:
        return None
    return f"{version} needs passing CI: " + ", ".join(problems)


def _check_single_region(facts: _Facts) -> str | None:
    elsewhere = facts.in_progress_in_other_regions
    if not elsewhere:
        return None
    request = facts.request
    return (
        f"{request.service} is already being deployed in {', '.join(elsewhere)} "
        f"({request.environment.availability}); one environment of an availability at a time"
    )


def _check_promotion(config: bc.Promotion, facts: _Facts) -> str | None:
    request = facts.request
    finished = facts.first_success_by_environment.get(config.from_environment)
    if finished is None:
        if config.from_environment not in facts.environment_names:
            raise bc.ConfigError(f"environment {config.from_environment!r} does not exist")
        return f"{request.version} must first succeed in {config.from_environment}"
    age = request.now - finished
    if age >= timedelta(minutes=config.min_minutes):
        return None
    minutes = int(age.total_seconds() // 60)
    return (
        f"{request.version} must have succeeded in {config.from_environment} at least "
        f"{config.min_minutes} minutes ago; it did {minutes} minutes ago"
    )


def can_override(user: User | AnonymousUser, *, service: Service, environment: Environment) -> bool:
    """May the user deploy past overridable blockers here (with a reason)?"""
    return can(user, Verb.OVERRIDE_BLOCKERS, service=service, environment=environment)


def describe_blocker(blocker: Blocker, exempt: list[str]) -> dict[str, Any]:
    """What history stores about a blocker."""
    return {
        "name": blocker.name,
        "kind": blocker.kind,
        "scope": blocker.scope_label,
        "active": blocker.active,
        "overridable": blocker.overridable,
        "config": blocker.config,
        "exempt_users": sorted(exempt),
    }


@transaction.atomic
def save_blocker(
    *, actor: User | AnonymousUser | None, blocker: Blocker, exempt_users: list[User]
) -> Blocker:
    """Create or change a blocker and its exemptions; records history in the same transaction."""
    adding = blocker._state.adding
    before = None
    if not adding:
        old = Blocker.objects.get(pk=blocker.pk)
        before = describe_blocker(old, [u.username for u in old.exempt_users.all()])
    blocker.full_clean()
    blocker.save()
    blocker.exempt_users.set(exempt_users)
    after = describe_blocker(blocker, [u.username for u in exempt_users])
    record_event(
        actor=actor,
        action="blocker.created" if adding else "blocker.changed",
        summary=f"{'Created' if adding else 'Changed'} blocker '{blocker.name}' "
        f"({blocker.get_kind_display()}) on {blocker.scope_label}",
        target=blocker,
        data={"before": before, "after": after},
    )
    return blocker


@transaction.atomic
def delete_blocker(
    *, actor: User | AnonymousUser | None, blocker: Blocker, reason: str = ""
) -> None:
    before = describe_blocker(blocker, [u.username for u in blocker.exempt_users.all()])
    why = f" because {reason}" if reason else ""
    record_event(
        actor=actor,
        action="blocker.deleted",
        summary=f"Deleted blocker '{blocker.name}' ({blocker.get_kind_display()}){why}",
        target=blocker,
        data={"before": before, "after": None, **({"reason": reason} if reason else {})},
    )
    blocker.delete()


def read_by_sql(sql: str, params: list[Any], names: list[str]) -> list[Blocker]:
    """The Blockers that `sql` (a Blocker query compiled once per process, its columns `names`
    in the model's order) reads with `params`: instances holding those columns, the config
    decoded by its field as Django decodes it (from_db_value)."""
    db = Blocker.objects.db
    connection = connections[db]
    config: Any = Blocker._meta.get_field("config")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        Blocker.from_db(
            db,
            names,
            [
                config.from_db_value(value, None, connection) if name == "config" else value
                for name, value in zip(names, row, strict=True)
            ],
        )
        for row in rows
    ]
