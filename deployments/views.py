"""Deployment pages: the Deploy form and its results, a deployment's page with its actions,
and the comparison of two deployments. Every change is a POST to a service, then a redirect."""

import difflib
import html
import secrets
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deployments import selectors
from deployments.bad_version_views import detail_context as bad_version_context
from deployments.controls import REDEPLOY_UNFINISHED, Control, deployment_controls
from deployments.engine.heartbeat import pending_reason, worker_absence
from deployments.forms import CompareForm, DeployForm, PreviewForm, RedeployForm
from deployments.live import has_logs, visible_timeline
from deployments.manifests import render_checked
from deployments.models import DeployableVersion, Deployment, Group, InvalidTransition, Service
from deployments.policy import PolicyViolation
from deployments.rendering import RenderError, to_yaml
from deployments.services.bad_versions import BadVersionError
from deployments.services.deploy import (
    DeployOutcome,
    Target,
    blocked_for,
    cancel_deployment,
    check_targets,
    may_cancel,
    request_deployment,
    request_deployments,
    revert_deployment,
)
from deployments.status import Status
from environments.models import Environment
from permissions.selectors import allowed_targets, every_environment, service_rows, visibility
from permissions.services import can, explain
from permissions.verbs import Verb

RESULTS_KEPT = 5  # result pages kept in the session
SESSION_RESULTS = "deploy_results"


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # behind login_required
    return request.user


def _deployment_or_404(user: User, deployment_id: int) -> Deployment:
    # SECURITY: a deployment the user may not view is a 404, as if it did not exist.
    deployment = selectors.deployment_for_page(user, deployment_id)
    if deployment is None:
        raise Http404(f"No deployment #{deployment_id}.")
    return deployment


# -- the Deploy page ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def deploy(request: HttpRequest) -> HttpResponse:
    """GET: the form, with what the query string chose already checked. POST: all or nothing
    (request_deployments); then the page that follows what was created (one deployment: its
    page; several: the batch page), or this page again listing every refusal."""
    user = _user(request)
    if request.method == "GET":
        # Every service's and environment's row, read before the form asks what the user may
        # view: that read then takes its ids from these rows (two queries fewer than both).
        service_rows()
        every_environment()
        form = DeployForm(initial=_initial(request), user=user)
        selection = _selection(request.GET, user, offered_like=form)
        checked = _check_selection(selection, user) if selection is not None else None
        return _deploy_page(request, form, checked=checked, selection=selection)
    form = DeployForm(request.POST, user=user)
    if not form.is_valid():
        return _deploy_page(request, form, checked=None, status=400)
    data = form.cleaned_data
    outcomes = request_deployments(
        user=user,
        targets=form.items,
        message=data["message"],
        override_reason=data["override_reason"],
        batch=uuid.uuid4(),
    )
    created = [o.deployment for o in outcomes if o.kind == "created" and o.deployment]
    if len(created) != len(outcomes) or not created:
        verdicts = list(zip(outcomes, [t.version for t in form.items], strict=True))
        messages.error(request, "Nothing was deployed: " + _refusal_summary(outcomes))
        return _deploy_page(request, form, checked=verdicts, status=409)
    if len(created) == 1:
        messages.success(request, f"Deployment #{created[0].pk} requested.")
        return redirect("deployment-detail", deployment_id=created[0].pk)
    messages.success(request, f"{len(created)} deployments requested.")
    return redirect("deployment-batch", batch=created[0].batch)


def _refusal_summary(outcomes: list[DeployOutcome]) -> str:
    refused = [o for o in outcomes if o.kind not in ("created", "held")]
    return (
        f"{len(refused)} of {len(outcomes)} targets refused (listed below); "
        "untick them or fix them and deploy again."
    )


def _bound_or_none(data: Any, user: User) -> "list[tuple[DeployOutcome, Any]] | None":
    """The check of a selection given in a query string or posted to the check fragment:
    None when it names no environment and service yet."""
    selection = _selection(data, user)
    return None if selection is None else _check_selection(selection, user)


def _selection(
    data: Any, user: User, *, offered_like: DeployForm | None = None
) -> DeployForm | None:
    """The form bound to a selection that names environments and services; None before."""
    if not (data.getlist("environments") and data.getlist("services")):
        return None
    return DeployForm(data, user=user, offered_like=offered_like)


def _check_selection(form: DeployForm, user: User) -> "list[tuple[DeployOutcome, Any]] | None":
    """What a Deploy would answer for each target now (nothing is created). Before a version
    is chosen (or when the form is otherwise incomplete), the permission and the message
    rules only, per (service, environment)."""
    if form.is_valid():
        data = form.cleaned_data
        outcomes = check_targets(
            user=user,
            targets=form.items,
            message=data["message"],
            override_reason=data["override_reason"],
        )
        return list(zip(outcomes, [t.version for t in form.items], strict=True))
    services, environments = _chosen(form, "services"), _chosen(form, "environments")
    if not services or not environments:
        return None
    refused = selectors.pair_refusals(user, services, environments)
    message = str(form["message"].value() or "").strip()
    verdicts = []
    for environment in environments:
        for service in services:
            kind, reason = "unchecked", "choose a version to check the blockers"
            if (service.pk, environment.pk) in refused:
                kind, reason = "refused", refused[(service.pk, environment.pk)]
            elif environment.require_deployment_message and not message:
                kind, reason = "invalid", f"{environment.name} requires a deployment message"
            verdicts.append((DeployOutcome(kind, service, environment, reason=reason), None))  # type: ignore[arg-type]
    return verdicts


def _initial(request: HttpRequest) -> dict[str, Any]:
    return {
        "services": request.GET.getlist("services"),
        "environments": request.GET.getlist("environments"),
        "groups": request.GET.getlist("groups"),
        "all_groups": request.GET.get("all_groups") == "1",
        "sha": request.GET.get("sha", ""),
        "branch": request.GET.get("branch", ""),
        "message": request.GET.get("message", ""),
    }


def _chosen(form: DeployForm, name: str) -> list[Any]:
    """The services or environments chosen (posted or in the query string), limited to the
    ones the form accepts (the user may view them). When the form has validated the field, its
    rows are the ones the field read (the same ones, in the same order): no second query."""
    cleaned = getattr(form, "cleaned_data", {})
    if name in cleaned:
        return list(cleaned[name])
    raw = form[name].value() or []
    ids = [int(v) for v in raw if str(v).isascii() and str(v).isdigit() and len(str(v)) < 19]
    offered: Any = form.fields[name]
    return list(offered.queryset.filter(pk__in=ids)) if ids else []


def _chosen_services(form: DeployForm) -> list[Service]:
    return _chosen(form, "services")


def _boxes(
    form: DeployForm, name: str, choices: dict[int, selectors.Choice]
) -> list[tuple[bool, selectors.Choice]]:
    """Each choice of the field (deployable, or why not) with whether its box is checked. The
    page's template draws the boxes from these: the field's widget would load every row again
    and render a template per option (most of the page's time at 1,000 services)."""
    value = form[name].value() or []
    checked = {str(v) for v in (value if isinstance(value, list | tuple) else [value])}
    return [(str(pk) in checked, choice) for pk, choice in choices.items()]


def _choice_boxes(name: str, prefix: str, boxes: list[tuple[bool, selectors.Choice]]) -> SafeString:
    """The checkboxes of one list of choices, one per line:

        <div class="choice[ unavailable]" data-name="NAME"><input type="checkbox"
          name="FIELD" value="ID" id="PREFIX-ID"[ checked][ disabled
          aria-describedby="why-PREFIX-ID"]><label for="PREFIX-ID">NAME</label>
          [<small class="note">NOTE</small>]
          [<small class="why" id="why-PREFIX-ID">REASON</small>]</div>

    Written here rather than in a template loop: at 1,000 services the loop took about 35 ms
    of the page's time, this about 1 ms."""
    # Measured again against a template-only {% for %} (13:04 UTC, bench/board_bench.py):
    # Deploy page x74.8 vs x23.0 the trivial view in CPU time, x127.7 vs x40.0 wall: kept.
    lines = []
    for checked, choice in boxes:
        # SECURITY: every text is escaped (names, and reasons and notes that quote grants
        # and blockers); the ids are digits.
        key, label = choice.key, html.escape(choice.name)
        box_id = f"{prefix}-{key}"
        why_id = f"why-{box_id}"
        state = " checked" if checked else ""
        why = ""
        if not choice.deployable:
            state += f' disabled aria-describedby="{why_id}"'
            why = f'<small class="why" id="{why_id}">{html.escape(choice.reason)}</small>'
        note = f'<small class="note">{html.escape(choice.note)}</small>' if choice.note else ""
        unavailable = "" if choice.deployable else " unavailable"
        lines.append(
            f'<div class="choice{unavailable}" data-name="{label}">'
            f'<input type="checkbox" name="{name}" value="{key}" id="{box_id}"{state}>'
            f'<label for="{box_id}">{label}</label>{note}{why}</div>'
        )
    return mark_safe("\n".join(lines))  # noqa: S308 (every part escaped above)


def _group_boxes(form: DeployForm) -> SafeString:
    """The group checkboxes, as the field's widget (GroupBoxes) wrote them, one per line:

        <div class="choice group-choice"><input type="checkbox" name="groups" value="ID"
          id="id_groups_N"[ checked] data-service="ID" data-environment="ID"> <label
          for="id_groups_N">SERVICE / ENVIRONMENT / GROUP</label></div>

    From (id, service, environment, names) rows: the widget built a Group instance with its
    service and environment and rendered two templates per group."""
    value = form["groups"].value() or []
    checked = {str(v) for v in (value if isinstance(value, list | tuple) else [value])}
    lines = []
    for index, (pk, service_id, environment_id, service, environment, name) in enumerate(
        _group_rows(form)
    ):
        box_id = f"id_groups_{index}"
        state = " checked" if str(pk) in checked else ""
        # SECURITY: the names are escaped; the ids are integers.
        label = html.escape(f"{service} / {environment} / {name}")
        lines.append(
            f'<div class="choice group-choice"><input type="checkbox" name="groups" value="{pk}"'
            f' id="{box_id}"{state} data-service="{service_id}"'
            f' data-environment="{environment_id}"> <label for="{box_id}">{label}</label></div>'
        )
    return mark_safe("\n".join(lines))  # noqa: S308 (every part escaped above)


def _group_rows(form: DeployForm) -> list[tuple[int, int, int, str, str, str]]:
    """The groups the form offers as (id, service id, environment id, service, environment,
    name), in the field's order (environment, service, group names). The group table alone,
    in name order (DeployForm.offered_group_rows), then placed by the request's catalogue
    rows (every_environment, service_rows: their positions are the database's name order):
    the two joins that named
    them took longer to plan than the read (0.72 -> 0.45 ms on PostgreSQL with no group).
    A group of a service or environment made since those rows were read is left out, as that
    service or environment is from the page."""
    rows = form.offered_group_rows()
    if not rows:
        return []
    environments = {e.pk: (rank, e.name) for rank, e in enumerate(every_environment())}
    services = {pk: (rank, name) for rank, (pk, name, _) in enumerate(service_rows())}
    # A stable sort: the groups of one service in one environment keep their name order.
    placed = sorted(
        (row for row in rows if row[2] in environments and row[1] in services),
        key=lambda row: (environments[row[2]][0], services[row[1]][0]),
    )
    return [(pk, s, e, services[s][1], environments[e][1], name) for pk, s, e, name in placed]


def _deploy_page(
    request: HttpRequest,
    form: DeployForm,
    *,
    checked: "list[tuple[DeployOutcome, Any]] | None",
    status: int = 200,
    selection: DeployForm | None = None,
) -> HttpResponse:
    """`selection`: the form the check validated for the same choices (the GET's), whose
    services and environments are then not read again (two queries)."""
    user = _user(request)
    chosen_from = form if selection is None else selection
    # The selection's environments are the form's (offered_like), listed once: its
    # validation picked the chosen ones from this list.
    env_choices, service_choices = selectors.deploy_choices(
        user, chosen_from.listed_environments(), form.offered_service_rows()
    )
    services = _chosen(chosen_from, "services")
    environments = _chosen(chosen_from, "environments")
    # What runs in the chosen targets, read once for the versions and for the check.
    running = selectors.running_versions(services, environments)
    environment_boxes = _boxes(form, "environments", env_choices)
    service_boxes = _boxes(form, "services", service_choices)
    context = {
        "form": form,
        "sees_something": bool(env_choices and service_choices),
        "offers_something": any(c.deployable for c in env_choices.values()),
        "environment_boxes": environment_boxes,
        "service_boxes": service_boxes,
        "environment_list": _choice_boxes("environments", "env", environment_boxes),
        "service_list": _choice_boxes("services", "service", service_boxes),
        "group_list": _group_boxes(form),
        "many_services": len(service_choices) > FILTER_FROM,
        "recent": selectors.version_picker(services, environments, running=running),
        "picked": form["version"].value() or "",
        "override_reason": form["override_reason"].value() or "",
        **_checks_context(checked, _covered(checked, services, environments, running)),
    }
    return render(request, "deployments/deploy.html", context, status=status)


def _covered(
    checked: "list[tuple[DeployOutcome, Any]] | None",
    services: list[Service],
    environments: list[Environment],
    running: "dict[selectors.RunningKey, Deployment]",
) -> "dict[selectors.RunningKey, Deployment] | None":
    """What runs, when it covers every checked target (the check and the page's choices come
    from the same selection); None otherwise, and the check reads it for its own targets."""
    chosen = {(s.pk, e.pk) for s in services for e in environments}
    targets = {(o.service.pk, o.environment.pk) for o, _ in checked or []}
    return running if targets <= chosen else None


FILTER_FROM = 8  # services: above this many, the page offers a filter box


def _checks_context(
    checked: "list[tuple[DeployOutcome, Any]] | None",
    running: "dict[selectors.RunningKey, Deployment] | None" = None,
) -> dict[str, Any]:
    rows = selectors.target_rows(checked, running=running) if checked else []
    return {
        "checks": rows,
        "all_ready": bool(rows) and all(r.kind == "ready" for r in rows),
        "may_override": any(r.kind == "blocked" and r.may_override for r in rows),
    }


@login_required
@require_GET
def version_choices(request: HttpRequest) -> HttpResponse:
    """The recent-versions fragment of the Deploy page for the chosen services and
    environments (the page reloads it when the selection changes)."""
    form = DeployForm(
        initial={
            "services": request.GET.getlist("services"),
            "environments": request.GET.getlist("environments"),
        },
        user=_user(request),
    )
    recent = selectors.version_picker(_chosen(form, "services"), _chosen(form, "environments"))
    return render(request, "deployments/_versions.html", {"recent": recent, "picked": ""})


@login_required
@require_POST
def deploy_check(request: HttpRequest) -> HttpResponse:
    """The check fragment of the Deploy page: the posted selection's targets, each with what a
    Deploy would answer now, what runs there and what would change. Creates nothing."""
    user = _user(request)
    context = _checks_context(_bound_or_none(request.POST, user))
    context["override_reason"] = request.POST.get("override_reason", "")
    return render(request, "deployments/_checks.html", context)


@login_required
@require_GET
def deploy_preview(request: HttpRequest) -> HttpResponse:
    """The manifests a Deploy would apply to one target, compared with what Apollo applied
    there last (the diff page, before the click)."""
    form = PreviewForm(request.GET)
    if not form.is_valid():
        context = {"preview_errors": form.errors}
        return render(request, "deployments/diff.html", context, status=400)
    user, data = _user(request), form.cleaned_data
    # SECURITY: a target the user may not view is a 404, as one that does not exist.
    seen = visibility(user)
    if not seen.sees(service_id=data["service"], environment_id=data["environment"]):
        raise Http404("No such target.")
    service = Service.objects.filter(pk=data["service"]).first()
    environment = Environment.objects.filter(pk=data["environment"]).first()
    version = DeployableVersion.objects.filter(
        service_id=data["service"], git_commit_sha=data["version"]
    ).first()
    group = None
    if data["group"] is not None:
        group = Group.objects.filter(
            pk=data["group"], service_id=data["service"], environment_id=data["environment"]
        ).first()
        if group is None:
            raise Http404("No such group of this service here.")
    if service is None or environment is None or version is None:
        raise Http404("No such version of this service.")
    preview = _preview(service, environment, group, version)
    return render(request, "deployments/diff.html", {"preview": preview})


def _preview(
    service: Service, environment: Environment, group: Group | None, version: DeployableVersion
) -> dict[str, Any]:
    applied = selectors.applied_manifests(service, environment, group)
    preview: dict[str, Any] = {
        "service": service,
        "environment": environment,
        "group": group,
        "version": version,
        "applied": applied,
    }
    try:
        documents = render_checked(
            service=service, environment=environment, version=version, group=group
        )
    except (RenderError, PolicyViolation) as exc:
        preview["error"] = str(exc)
        return preview
    old = applied.rendered_manifests if applied is not None else ""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        to_yaml(documents).splitlines(keepends=True),
        fromfile=f"applied by deployment #{applied.pk}" if applied else "nothing applied yet",
        tofile=f"{service.name}@{version.git_commit_sha[:12]} in {environment.name}",
    )
    preview["diff"] = "".join(lines)
    return preview


def _result(outcome: DeployOutcome) -> dict[str, Any]:
    """What the results page shows about one outcome, as plain data for the session."""
    running = None
    if outcome.kind == "in_progress":
        running = selectors.running_deployment(outcome.service, outcome.environment, outcome.group)
    return {
        "kind": outcome.kind,
        "service": outcome.service.name,
        "environment": outcome.environment.name,
        "group": outcome.group.name if outcome.group else "",
        "deployment_id": outcome.deployment.pk if outcome.deployment else None,
        "running_id": running.pk if running else None,
        "reason": outcome.reason,
        "blockers": [
            {"name": r.name, "kind": r.kind, "reason": r.reason} for r in outcome.refusals
        ],
        "may_override": outcome.may_override,
    }


def _resubmit(item: Target, message: str) -> dict[str, Any]:
    """The fields that ask for this one item again (the override form posts them)."""
    return {
        "environments": item.environment.pk,
        "services": item.service.pk,
        "version": item.version.git_commit_sha if item.version else "",
        "groups": item.group.pk if item.group else "",
        "message": message,
    }


def _keep_results(request: HttpRequest, results: list[dict[str, Any]]) -> str:
    token = secrets.token_urlsafe(8)
    kept: dict[str, Any] = request.session.get(SESSION_RESULTS, {})
    kept[token] = results
    request.session[SESSION_RESULTS] = dict(list(kept.items())[-RESULTS_KEPT:])
    return token


@login_required
@require_GET
def deploy_results(request: HttpRequest, token: str) -> HttpResponse:
    results = request.session.get(SESSION_RESULTS, {}).get(token)
    if results is None:
        messages.info(request, "Those results are no longer available; deploy again.")
        return redirect("deploy")
    ids = [r["deployment_id"] for r in results if r["deployment_id"]]
    statuses = dict(Deployment.objects.filter(pk__in=ids).values_list("pk", "status"))
    for result in results:
        result["status"] = statuses.get(result["deployment_id"], "")
    counts = {kind: sum(r["kind"] == kind for r in results) for kind in _KINDS}
    batch = next((r.get("batch") for r in results if r["deployment_id"] and r.get("batch")), "")
    context = {"results": results, "counts": counts, "batch": batch}
    return render(request, "deployments/results.html", context)


_KINDS = ["created", "refused", "blocked", "in_progress", "invalid", "held"]


# -- one deployment -------------------------------------------------------------------------


@login_required
@require_GET
def deployment_detail(request: HttpRequest, deployment_id: int) -> HttpResponse:
    user = _user(request)
    deployment = _deployment_or_404(user, deployment_id)
    repository = selectors.repository_url(deployment)
    source = deployment.source_version
    finished = Status(deployment.status).is_terminal
    snapshot = deployment.environment_snapshot or {}
    context = {
        "deployment": deployment,
        "commit_url": selectors.commit_url(deployment),
        "compare_url": selectors.compare_url(
            repository, source.git_commit_sha if source else "", deployment.version.git_commit_sha
        ),
        "in_progress": not finished,
        # A PENDING one that waited long with no worker alive says so (and how to start one).
        "status_reason": (
            pending_reason(deployment, worker_absence())
            if deployment.status == Status.PENDING
            else deployment.status_reason
        ),
        "controls": _controls(user, deployment),
        "timeline": _timeline(user, deployment),
        "snapshot_services": sorted((snapshot.get("services") or {}).items()),
        "snapshot_error": snapshot.get("error", ""),
        "compare_form": CompareForm(initial={"a": deployment.pk}),
        **bad_version_context(user, deployment),
    }
    return render(request, "deployments/detail.html", context)


def _controls(user: User, deployment: Deployment) -> dict[str, Control]:
    """The page's action controls (deployments.controls): the gate asked once per verb, and
    whether the user holds the verb anywhere only when it is refused here."""
    service, environment = deployment.service, deployment.environment
    cancel = explain(user, Verb.CANCEL, service=service, environment=environment)
    deploy = explain(user, Verb.DEPLOY, service=service, environment=environment)
    holds = {
        decision_verb
        for decision_verb, decision in ((Verb.CANCEL, cancel), (Verb.DEPLOY, deploy))
        if decision.allowed or allowed_targets(user, decision_verb)
    }
    return deployment_controls(
        deployment,
        cancel=cancel,
        deploy=deploy,
        holds=holds,
        blocked=lambda versions: blocked_for(
            user,
            service=service,
            environment=environment,
            versions=versions,
            group=deployment.group,
        ),
    )


def _timeline(user: User, deployment: Deployment) -> list[Any]:
    # The gate is asked only when there are log lines to hide (a query for non-admins).
    timeline = deployment.timeline
    allowed = not has_logs(timeline) or can(
        user, Verb.VIEW_LOGS, service=deployment.service, environment=deployment.environment
    )
    return visible_timeline(timeline, may_view_logs=allowed)


@login_required
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """GET: the confirmation page. POST: cancel through the service, which checks again."""
    user = _user(request)
    deployment = _deployment_or_404(user, deployment_id)
    if request.method == "GET":
        if not (deployment.can_be_cancelled and may_cancel(user, deployment)):
            messages.error(request, "You cannot cancel this deployment.")
            return redirect("deployment-detail", deployment_id=deployment.pk)
        return render(request, "deployments/cancel.html", {"deployment": deployment})
    try:
        cancel_deployment(user=user, deployment=deployment)
    except PermissionDenied as exc:
        messages.error(request, f"Not cancelled: {exc or 'you may not cancel this deployment.'}")
    except InvalidTransition as exc:
        messages.error(request, f"Not cancelled: {exc}.")
    else:
        messages.success(request, f"Deployment #{deployment.pk} is being cancelled.")
    return redirect("deployment-detail", deployment_id=deployment.pk)


@login_required
@require_POST
def redeploy(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """Deploy this version again, or the version that ran before, through the full gate."""
    user = _user(request)
    deployment = _deployment_or_404(user, deployment_id)
    form = RedeployForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose this version or the previous one.")
        return redirect("deployment-detail", deployment_id=deployment.pk)
    which = form.cleaned_data["which"]
    version = deployment.version if which == "this" else deployment.source_version
    if version is None or not Status(deployment.status).is_terminal:
        messages.error(request, REDEPLOY_UNFINISHED)
        return redirect("deployment-detail", deployment_id=deployment.pk)
    item = Target(deployment.service, deployment.environment, deployment.group, version)
    if which == "this":
        outcome = request_deployment(
            user=user,
            service=deployment.service,
            environment=deployment.environment,
            version=version,
            group=deployment.group,
            message=form.cleaned_data["message"],
        )
    else:
        try:  # the version that ran before, with the manifests recorded when it ran
            reverted = revert_deployment(
                user=user,
                deployment=deployment,
                message=form.cleaned_data["message"],
                mark_bad=form.cleaned_data["mark_bad_reason"]
                if form.cleaned_data["mark_bad"]
                else None,
            )
        except (InvalidTransition, BadVersionError, PermissionDenied) as exc:
            messages.error(request, f"Not rolled back: {str(exc).rstrip('.')}.")
            return redirect("deployment-detail", deployment_id=deployment.pk)
        assert reverted is not None  # a finished deployment is never cancelled
        outcome = reverted
    if outcome.kind == "created" and outcome.deployment is not None:
        messages.success(request, f"Deployment #{outcome.deployment.pk} requested.")
        return redirect("deployment-detail", deployment_id=outcome.deployment.pk)
    result = _result(outcome)
    result["resubmit"] = _resubmit(item, form.cleaned_data["message"])
    messages.error(request, f"Not deployed ({outcome.kind.replace('_', ' ')}).")
    return redirect("deploy-results", token=_keep_results(request, [result]))


# -- comparing two deployments --------------------------------------------------------------


@login_required
@require_GET
def diff(request: HttpRequest) -> HttpResponse:
    """Two deployments side by side: ?a=&b=, or ?d=&d= (two boxes ticked on the history page,
    compared oldest first)."""
    ticked = [v for v in request.GET.getlist("d") if v.isascii() and v.isdigit()]
    data = {"a": ticked[0], "b": ticked[1]} if len(ticked) == 2 else request.GET
    form = CompareForm(data)
    if len(ticked) not in (0, 2):
        messages.error(request, "Tick exactly two deployments to compare them.")
        return redirect("history")
    if not form.is_valid():
        return render(request, "deployments/diff.html", {"form": form}, status=400)
    user = _user(request)
    a = _deployment_or_404(user, form.cleaned_data["a"])
    b = _deployment_or_404(user, form.cleaned_data["b"])
    if ticked and (a.created_at, a.pk) > (b.created_at, b.pk):
        a, b = b, a
    comparison = selectors.compare_deployments(a, b)
    return render(request, "deployments/diff.html", {"form": form, "comparison": comparison})
