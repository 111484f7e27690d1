"""Requesting and cancelling deployments: the one path pages, the API and commands share.

A request goes through the gate (permission, then blockers), renders the manifests to
fail early on a template error or a manifest policy violation, and creates a PENDING
deployment that the worker picks up.
"""

import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, QuerySet, Subquery

from apollo_site.ops import context as log_context
from deployments import live, rendering
from deployments.controls import cancel_state_refusal
from deployments.engine.wakeup import notify_new_work
from deployments.manifests import recorded_checked, render_checked, seal
from deployments.models import (
    BadVersion,
    DeployableVersion,
    Deployment,
    Group,
    InvalidTransition,
    Service,
)
from deployments.notifications import events as notify
from deployments.policy import PolicyViolation
from deployments.services import bad_versions
from deployments.status import Status
from environments.crypto import CredentialError
from environments.models import Environment
from history.services import record_event
from permissions import blockers
from permissions.services import can, explain
from permissions.verbs import Verb

# held: this target passed its checks, but another target of the same request was refused.
# ready: (check_targets only) it would be created now.
OutcomeKind = Literal["created", "refused", "blocked", "in_progress", "invalid", "held", "ready"]


@dataclass(frozen=True)
class DeployOutcome:
    kind: OutcomeKind
    service: Service
    environment: Environment
    group: Group | None = None
    deployment: Deployment | None = None
    reason: str = ""
    refusals: tuple[blockers.Refusal, ...] = field(default_factory=tuple)
    may_override: bool = False


@dataclass(frozen=True)
class Target:
    """One (service, environment, group) of a request, and the version it resolved to (None,
    with the reason in `missing`, when the chosen sha or branch has none for that service)."""

    service: Service
    environment: Environment
    group: Group | None
    version: DeployableVersion | None
    missing: str = ""


@dataclass(frozen=True)
class _Ready:
    """A target that passed every check, with what to store."""

    target: Target
    documents: list[dict[str, Any]]
    refusals: tuple[blockers.Refusal, ...]
    source_version_id: int | None  # the version the target ran last (previous_version)
    subscribed: bool  # some enabled notification subscription covers the target


@dataclass(frozen=True)
class AsSystem:
    """A request Apollo makes by itself (the automatic revert, deployments.services.
    auto_revert), as the system user: no grant is asked (an admin's revert policy asked for
    it, and the system holds none); the blockers and bad versions apply, unless pass_blockers
    (the reason recorded as the override) lets it past the overridable ones."""

    pass_blockers: str = ""


HELD = "not requested: another target of this request was refused"
MAX_TARGETS = 50  # services x environments x groups in one request


def fan_out(
    *,
    services: list[Service],
    environments: list[Environment],
    groups: list[Group],
    versions: dict[int, DeployableVersion],
    wanted: str,
) -> list[Target]:
    """The targets of one request: every chosen service in every chosen environment, one per
    chosen group of that pair (or the pair itself when none of its groups was chosen).
    versions: the version of each service id; one without gets a target saying it has no
    version `wanted` (a sha, or "on branch B")."""
    targets = []
    for environment in environments:
        for service in services:
            version = versions.get(service.pk)
            missing = "" if version else f"{service.name} has no version {wanted}"
            pair = (service.pk, environment.pk)
            mine: list[Group | None] = [
                g for g in groups if (g.service_id, g.environment_id) == pair
            ]
            for group in mine or [None]:
                targets.append(Target(service, environment, group, version, missing))
    return targets


def request_deployments(
    *,
    user: User,
    targets: list[Target],
    message: str = "",
    override_reason: str = "",
    batch: uuid.UUID | None = None,
) -> list[DeployOutcome]:
    """Request one version to several targets at once (the Deploy page, the API's list form):
    all or nothing.

    Every target is checked first (as request_deployment checks one). If any is refused
    (invalid, not permitted, blocked, in progress), none is created: its outcome says why and
    every other target's is "held". Otherwise all are created in one transaction, sharing
    `batch`; one that turns out in progress meanwhile (a concurrent request) undoes them all."""
    checked = [_check(user, t, message, override_reason, None) for t in targets]
    _announce_blocked(user, list(zip(targets, checked, strict=True)))
    ready = [c for c in checked if isinstance(c, _Ready)]
    if len(ready) != len(checked):
        return [
            c if isinstance(c, DeployOutcome) else _outcome(c.target, "held", HELD) for c in checked
        ]
    try:
        with transaction.atomic():
            outcomes = [_create_ready(user, r, message, override_reason, batch) for r in ready]
            lost = next((o for o in outcomes if o.kind != "created"), None)
            if lost is not None:
                raise _Undo(lost)
    except _Undo as undo:
        return [
            undo.outcome if _same(r.target, undo.outcome) else _outcome(r.target, "held", HELD)
            for r in ready
        ]
    return outcomes


def check_targets(
    *, user: User, targets: list[Target], message: str = "", override_reason: str = ""
) -> list[DeployOutcome]:
    """What request_deployments would answer for each target now, creating nothing: the Deploy
    page shows it before the click. A target that passes every check is "ready"."""
    checked = [_check(user, t, message, override_reason, None) for t in targets]
    return [c if isinstance(c, DeployOutcome) else _outcome(c.target, "ready") for c in checked]


class _Undo(Exception):
    def __init__(self, outcome: DeployOutcome) -> None:
        self.outcome = outcome


def _same(target: Target, outcome: DeployOutcome) -> bool:
    return (target.service, target.environment, target.group) == (
        outcome.service,
        outcome.environment,
        outcome.group,
    )


def request_deployment(
    *,
    user: User,
    service: Service,
    environment: Environment,
    version: DeployableVersion,
    group: Group | None = None,
    message: str = "",
    override_reason: str = "",
    batch: uuid.UUID | None = None,
    recorded: Deployment | None = None,
    cause: Deployment | None = None,
    system: AsSystem | None = None,
) -> DeployOutcome:
    """Request one deployment. `batch` ties together the deployments of one Deploy request
    (for example one per group), followed on one page.

    The manifests are rendered here, once (or, with `recorded`, taken from that earlier
    deployment of the same target and version: a revert re-applies what ran), checked
    against the manifest policy and stored on the deployment; the worker applies exactly
    those (after checking the policy again). `cause`: the deployment a revert undoes;
    `system`: Apollo's own request (AsSystem), never a user's."""
    target = Target(service, environment, group, version)
    if system is not None:
        override_reason = system.pass_blockers
    checked = _check(user, target, message, override_reason, recorded, system)
    _announce_blocked(user, [(target, checked)])
    if isinstance(checked, DeployOutcome):
        return checked
    return _create_ready(user, checked, message, override_reason, batch, cause)


def _announce_blocked(user: User, checked: list[tuple[Target, "DeployOutcome | _Ready"]]) -> None:
    """Notify the subscribers of a request a blocker refused (a request, not a preflight
    check_targets: that one only shows what a click would answer)."""
    for target, c in checked:
        if isinstance(c, DeployOutcome) and c.kind == "blocked" and target.version is not None:
            notify.blocked(
                service=c.service,
                environment=c.environment,
                sha=target.version.git_commit_sha,
                username=user.get_username(),
                reason=c.reason,
            )


def _outcome(target: Target, kind: OutcomeKind, reason: str = "", **extra: Any) -> DeployOutcome:
    return DeployOutcome(
        kind, target.service, target.environment, target.group, reason=reason, **extra
    )


def _check(
    user: User,
    target: Target,
    message: str,
    override_reason: str,
    recorded: Deployment | None,
    system: AsSystem | None = None,
) -> "DeployOutcome | _Ready":
    """The checks of one target, in order: the request itself, the gate (permission, then the
    blockers and a version marked bad there, unless overridden), a deployment in progress,
    the manifests (rendered once). SECURITY: only Apollo's own request (system) skips the
    permission; no page or API passes it."""
    service, environment, group, version = (
        target.service,
        target.environment,
        target.group,
        target.version,
    )
    if version is None:
        return _outcome(target, "invalid", target.missing)
    problem = _invalid_request(service, environment, version, group, message)
    if problem:
        return _outcome(target, "invalid", problem)
    if system is None:
        decision = explain(user, Verb.DEPLOY, service=service, environment=environment)
        if not decision.allowed:
            return _outcome(target, "refused", decision.reason)
    # Read before the blockers: whether the version is marked bad here comes with the rest.
    state = _target_state(service, environment, group, version)
    running, source_version_id, marked_bad, subscribed, in_scope = state
    blocked = in_scope or bool(environment.concurrency_limit)
    refusals = _refusals(
        user, service, environment, version, group, blocked=blocked, marked_bad=marked_bad
    )
    may_override = bool(refusals) and (
        system is not None or blockers.can_override(user, service=service, environment=environment)
    )
    if refusals and not (override_reason.strip() and may_override and _overridable(refusals)):
        reason = "; ".join(r.reason for r in refusals)
        return _outcome(target, "blocked", reason, refusals=refusals, may_override=may_override)
    if running:
        return _outcome(target, "in_progress", _in_progress_reason(service, environment, group))
    try:
        documents = _documents(service, environment, version, group, recorded)
    except rendering.RenderError as exc:
        return _outcome(
            target, "invalid", f"the templates of {service.name} cannot be rendered: {exc}"
        )
    except PolicyViolation as exc:
        return _outcome(target, "invalid", f"the manifest policy refuses {service.name}: {exc}")
    except CredentialError:
        pk = recorded.pk if recorded is not None else None
        return _outcome(target, "invalid", f"the recorded manifests of #{pk} cannot be read")
    return _Ready(target, documents, refusals, source_version_id, subscribed)


def _target_state(
    service: Service, environment: Environment, group: Group | None, version: DeployableVersion
) -> tuple[bool, int | None, bool, bool, bool]:
    """Whether a deployment of the target is in progress, the id of the version its last
    DONE deployment ran (what previous_version returns), whether `version` is marked bad
    there (deployments.services.bad_versions), whether any notification subscription
    covers the target (else the outbox is not looked up again at the insert) and whether any
    active blocker's scope covers it (else the blockers are not evaluated, as blocked_for
    does): one query instead of five, on the request path. A deployment that finished
    between this read and the insert cannot exist: it would have been in progress here (the
    partial unique constraint guards the insert). A subscription enabled between this read
    and the insert hears from the deployment's next event on, as one enabled a moment after
    the request; a blocker activated between them, as one activated a moment after.

    The SQL is _target_state_query's, compiled once per process (_target_state_sql) and run
    with this request's values: building and compiling its four subqueries was most of this
    function's time."""
    sql, params = _target_state_sql(grouped=group is not None)
    values: dict[Any, Any] = {
        _SERVICE: service.pk,
        _ENVIRONMENT: environment.pk,
        _SHA: version.git_commit_sha,
        _AVAILABILITY: environment.availability,
    }
    if group is not None:
        values.update({_GROUP: group.pk, _GROUP_NAME: group.name})
    with connection.cursor() as cursor:
        cursor.execute(sql, [values.get(p, p) for p in params])
        in_progress, version_id, marked_bad, any_subscription, any_blocker = cursor.fetchone()
    return (
        bool(in_progress),
        version_id,
        bool(marked_bad),
        bool(any_subscription),
        bool(any_blocker),
    )


# Stand-ins for a request's values in the SQL compiled once: none can be a real id or sha.
_SERVICE, _ENVIRONMENT, _GROUP = -710_001, -710_002, -710_003
_GROUP_NAME, _SHA = "\x00target-state-group", "\x00target-state-sha"
_AVAILABILITY = "\x00target-state-availability"


def _target_state_query(
    service: Service, environment: Environment, group: Group | None, sha: str
) -> "QuerySet[Service, tuple[Any, ...]]":
    """_target_state's one query."""
    target = Deployment.objects.filter(service=service, environment=environment)
    running = target.in_progress().filter(group_key=group.name if group else "")
    last = target.filter(group=group).last_done().values("version_id")[:1]
    bad = bad_versions.in_force(service=service, environment=environment, sha=sha)
    subscribed = notify.matching(service.pk, environment.pk)
    # Whoever asks: whether some blocker applies to this user is evaluate's to say.
    in_scope = blockers.blockers_in_scope(
        user=AnonymousUser(), service=service, environment=environment, group=group
    )
    return Service.objects.filter(pk=service.pk).values_list(
        Exists(running), Subquery(last), Exists(bad), Exists(subscribed), Exists(in_scope)
    )


@cache
def _target_state_sql(*, grouped: bool) -> tuple[str, tuple[Any, ...]]:
    """_target_state_query's SQL and parameters with the stand-ins in place of the values
    (one for the grouped, one for the ungrouped: `group_id IS NULL` is another SQL)."""
    group = Group(pk=_GROUP, name=_GROUP_NAME) if grouped else None
    environment = Environment(pk=_ENVIRONMENT, availability=_AVAILABILITY)
    query = _target_state_query(Service(pk=_SERVICE), environment, group, _SHA)
    sql, params = query.query.sql_with_params()
    stand_ins = {_SERVICE, _ENVIRONMENT, _SHA, _AVAILABILITY}
    stand_ins |= {_GROUP, _GROUP_NAME} if grouped else set()
    # Fail loudly if Django ever changed a value on its way into the parameters.
    assert stand_ins <= set(params), (stand_ins, params)
    return sql, tuple(params)


def _create_ready(
    user: User,
    ready: _Ready,
    message: str,
    override_reason: str,
    batch: uuid.UUID | None,
    cause: Deployment | None = None,
) -> DeployOutcome:
    t = ready.target
    assert t.version is not None  # checked
    deployment = _create(
        user=user,
        service=t.service,
        environment=t.environment,
        version=t.version,
        group=t.group,
        message=message.strip(),
        documents=ready.documents,
        refusals=ready.refusals,
        override_reason=override_reason.strip(),
        batch=batch,
        source_version_id=ready.source_version_id,
        cause=cause,
        subscribed=ready.subscribed,
    )
    if deployment is None:
        return _outcome(t, "in_progress", _in_progress_reason(t.service, t.environment, t.group))
    return _outcome(t, "created", deployment=deployment)


def _documents(
    service: Service,
    environment: Environment,
    version: DeployableVersion,
    group: Group | None,
    recorded: Deployment | None,
) -> list[dict[str, Any]]:
    if recorded is not None and recorded.manifest_documents:
        target = (service.pk, environment.pk, group.pk if group else None, version.pk)
        if target != (
            recorded.service_id,
            recorded.environment_id,
            recorded.group_id,
            recorded.version_id,
        ):
            raise rendering.RenderError(f"#{recorded.pk} is another target or version")
        return recorded_checked(deployment=recorded, sha=version.git_commit_sha)
    return render_checked(service=service, environment=environment, version=version, group=group)


def _refusals(
    user: User,
    service: Service,
    environment: Environment,
    version: DeployableVersion,
    group: Group | None,
    *,
    blocked: bool,
    marked_bad: bool,
) -> tuple[blockers.Refusal, ...]:
    """What refuses this request now: the blockers (evaluated only when `blocked`: some may
    apply) and a mark in force on the version (who marked it and why: a query only then)."""
    refusals: tuple[blockers.Refusal, ...] = ()
    if blocked:
        refusals = tuple(
            blockers.evaluate(
                user=user, service=service, environment=environment, version=version, group=group
            )
        )
    if marked_bad:
        bad = bad_versions.refusal(service=service, environment=environment, version=version)
        refusals = (*refusals, bad) if bad is not None else refusals
    return refusals


def _overridable(refusals: tuple[blockers.Refusal, ...]) -> bool:
    return all(refusal.overridable for refusal in refusals)


def blocked_for(
    user: User,
    *,
    service: Service,
    environment: Environment,
    versions: list[DeployableVersion],
    group: Group | None = None,
) -> dict[int, str]:
    """Why blockers or a bad-version mark refuse deploying each version here now, by version
    id, for controls to show disabled with the reason: "" when nothing refuses it, or when
    this user may override all that refuses it (the request's page then offers the override).
    The request check's rule; two queries when nothing blocks (blockers in scope, marks)."""
    in_scope = blockers.blockers_in_scope(
        user=user, service=service, environment=environment, group=group
    ).exists()
    marked = set(
        BadVersion.objects.active()
        .filter(
            service=service,
            environment=environment,
            sha__in=[v.git_commit_sha for v in versions],
        )
        .values_list("sha", flat=True)
    )
    reasons = {}
    for version in versions:
        refusals = _refusals(
            user,
            service,
            environment,
            version,
            group,
            blocked=bool(in_scope or environment.concurrency_limit),
            marked_bad=version.git_commit_sha in marked,
        )
        reason = "; ".join(r.reason for r in refusals)
        if (
            reason
            and _overridable(refusals)
            and blockers.can_override(user, service=service, environment=environment)
        ):
            reason = ""
        reasons[version.pk] = reason
    return reasons


def _invalid_request(
    service: Service,
    environment: Environment,
    version: DeployableVersion,
    group: Group | None,
    message: str,
) -> str:
    if version.service_id != service.pk:
        return f"version {version.git_commit_sha[:12]} is not a version of {service.name}"
    if group is not None and (group.service_id, group.environment_id) != (
        service.pk,
        environment.pk,
    ):
        return f"group {group.name} does not belong to {service.name} in {environment.name}"
    if service.deployed_per_group and group is None:
        return f"{service.name} is deployed per group: choose one or more groups"
    if environment.require_deployment_message and not message.strip():
        return f"{environment.name} requires a deployment message"
    return ""


def _in_progress_reason(service: Service, environment: Environment, group: Group | None) -> str:
    where = f"{service.name}{'/' + group.name if group else ''} in {environment.name}"
    return f"a deployment of {where} is already in progress"


def previous_version(
    *, service: Service, environment: Environment, group: Group | None
) -> DeployableVersion | None:
    """The version Apollo last deployed successfully to this target."""
    target = Deployment.objects.filter(service=service, environment=environment, group=group)
    last = target.last_done().select_related("version").first()
    return last.version if last is not None else None


def _create(
    *,
    user: User,
    service: Service,
    environment: Environment,
    version: DeployableVersion,
    group: Group | None,
    message: str,
    documents: list[dict[str, Any]],
    refusals: tuple[blockers.Refusal, ...],
    override_reason: str,
    source_version_id: int | None,
    batch: uuid.UUID | None = None,
    cause: Deployment | None = None,
    subscribed: bool = True,
) -> Deployment | None:
    # Computed before the transaction: on SQLite its BEGIN takes the one writer's lock, held
    # until COMMIT, and the worker's verdicts wait for it (#16).
    rendered, sealed = rendering.to_yaml(documents), seal(documents)
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(
                service=service,
                environment=environment,
                group=group,
                group_key=group.name if group else "",
                version=version,
                source_version_id=source_version_id,
                deployed_by=user,
                message=message,
                batch=batch,
                cause=cause,
                rendered_manifests=rendered,
                manifest_documents=sealed,
                request_id=log_context.request_id.get(),
                override_reason=override_reason if refusals else "",
                overridden_blockers=[
                    {"name": r.name, "kind": r.kind, "reason": r.reason} for r in refusals
                ],
            )
            overriding = f" overriding {len(refusals)} blocker(s)" if refusals else ""
            record_event(
                actor=user,
                action="deployment.requested",
                target=deployment,
                summary=f"requested {service.name}{'/' + group.name if group else ''}"
                f"@{version.git_commit_sha[:12]} "
                f"to {environment.name}{overriding}",
                data={"override_reason": override_reason} if refusals else {},
            )
            if any(r.name == bad_versions.REFUSAL_NAME for r in refusals):
                bad_versions.record_override(
                    user=user, deployment=deployment, reason=override_reason
                )
            if subscribed:  # (read with the target's state: no lookup when none matches)
                notify.deployment_event(deployment=deployment, event=notify.Event.REQUESTED)
            if subscribed and refusals:
                notify.deployment_event(
                    deployment=deployment, event=notify.Event.OVERRIDDEN, note=override_reason
                )
            transaction.on_commit(notify_new_work)
    except IntegrityError:
        # The partial unique constraint: another request for this target won the race.
        return None
    return deployment


def cancel_deployment(*, user: User, deployment: Deployment) -> Deployment:
    """Cancel: a PENDING deployment ends CANCELED; a STARTED one is rolled back by the worker.

    Raises PermissionDenied without the cancel verb, InvalidTransition when the deployment
    cannot be cancelled (finished already, or nothing ran before to roll back to).
    """
    decision = explain(
        user, Verb.CANCEL, service=deployment.service, environment=deployment.environment
    )
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        refusal = cancel_state_refusal(deployment)
        if refusal:
            raise InvalidTransition(refusal)
        if deployment.status == Status.PENDING:
            deployment.transition_to(Status.CANCELED, reason=f"cancelled by {user.username}")
        else:
            deployment.transition_to(
                Status.PENDING_CANCELLATION,
                reason=f"cancelled by {user.username}: rolling back",
            )
        record_event(
            actor=user,
            action="deployment.cancelled",
            target=deployment,
            summary=f"cancelled deployment #{deployment.pk}",
        )
        transaction.on_commit(lambda: live.broadcast_status(deployment))
    return deployment


def may_cancel(user: User, deployment: Deployment) -> bool:
    return can(user, Verb.CANCEL, service=deployment.service, environment=deployment.environment)


def revert_deployment(
    *,
    user: User,
    deployment: Deployment,
    message: str = "",
    override_reason: str = "",
    batch: uuid.UUID | None = None,
    mark_bad: str | None = None,
) -> DeployOutcome | None:
    """Undo a deployment: the one rule the page's roll back, the batch revert and the API share.

    In progress: it is cancelled (cancel_deployment; the worker rolls a started one back) and
    None is returned. Finished (DONE or FAILED): the version that ran before it is requested
    through the full gate, re-applying the manifests recorded on the deployment that ran it;
    the outcome of that request is returned. Raises PermissionDenied (cancel) and
    InvalidTransition (cannot be cancelled, or nothing ran before it to go back to).

    mark_bad: a reason to mark the reverted version bad in the environment
    (deployments.services.bad_versions), done with the cancel or the created revert, in its
    transaction; checked first (BadVersionError without a reason, PermissionDenied without
    `cancel`), so a refused mark changes nothing."""
    if mark_bad is not None:
        mark_bad = bad_versions.clean_reason(mark_bad)
        if not bad_versions.may_mark(
            user, service=deployment.service, environment=deployment.environment
        ):
            raise PermissionDenied(
                f"{user.get_username()} may not mark versions bad of "
                f"{deployment.service.name} in {deployment.environment.name} (it needs cancel)"
            )
    if not Status(deployment.status).is_terminal:
        with transaction.atomic():
            cancel_deployment(user=user, deployment=deployment)
            _mark_reverted(user, deployment, mark_bad)
        return None
    previous = deployment.source_version
    if previous is None or not deployment.can_be_reverted:
        raise InvalidTransition("nothing to revert to")
    with transaction.atomic():
        outcome = request_deployment(
            user=user,
            service=deployment.service,
            environment=deployment.environment,
            version=previous,
            group=deployment.group,
            batch=batch,
            message=message.strip() or f"Revert of #{deployment.pk}",
            override_reason=override_reason,
            recorded=deployment.source_deployment(),
            cause=deployment,
        )
        if outcome.deployment is not None:
            notify.deployment_event(
                deployment=outcome.deployment,
                event=notify.Event.REVERTED,
                note=f"revert of #{deployment.pk}",
            )
            _mark_reverted(user, deployment, mark_bad)
    return outcome


def _mark_reverted(user: User, deployment: Deployment, reason: str | None) -> None:
    if reason is not None:
        bad_versions.mark_bad(
            user=user,
            service=deployment.service,
            environment=deployment.environment,
            sha=deployment.version.git_commit_sha,
            reason=reason,
            deployment=deployment,
        )
