"""Deployment pages: the Deploy form and its results, a deployment's page with its actions,
and the comparison of two deployments. Every change is a POST to a service, then a redirect."""

import secrets
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deployments import selectors
from deployments.forms import CompareForm, DeployForm, RedeployForm
from deployments.live import has_logs, visible_timeline
from deployments.models import Deployment, InvalidTransition, Service
from deployments.services.deploy import (
    DeployOutcome,
    Target,
    cancel_deployment,
    may_cancel,
    request_deployment,
    request_deployments,
    revert_deployment,
)
from deployments.status import Status
from permissions.services import can
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
    user = _user(request)
    if request.method == "POST":
        form = DeployForm(request.POST, user=user)
        if form.is_valid():
            # One batch per submit: its deployments (one per group) are followed on one page.
            batch = uuid.uuid4()
            data = form.cleaned_data
            outcomes = request_deployments(
                user=user,
                targets=form.items,
                message=data["message"],
                override_reason=data["override_reason"],
                batch=batch,
            )
            results = [_result(outcome) for outcome in outcomes]
            for result, item in zip(results, form.items, strict=True):
                result["resubmit"] = _resubmit(item, form.cleaned_data["message"])
                result["batch"] = str(batch)
            return redirect("deploy-results", token=_keep_results(request, results))
        return _deploy_page(request, form, status=400)
    form = DeployForm(initial=_initial(request), user=user)
    return _deploy_page(request, form)


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


def _chosen_services(form: DeployForm) -> list[Service]:
    """The services chosen (posted or in the query string), limited to the ones offered."""
    raw = form["services"].value() or []
    ids = [int(v) for v in raw if str(v).isascii() and str(v).isdigit() and len(str(v)) < 19]
    offered: Any = form.fields["services"]
    return list(offered.queryset.filter(pk__in=ids)) if ids else []


def _deploy_page(request: HttpRequest, form: DeployForm, status: int = 200) -> HttpResponse:
    context = {
        "form": form,
        "recent": selectors.recent_versions(_chosen_services(form)),
        "picked": form["version"].value() or "",
    }
    return render(request, "deployments/deploy.html", context, status=status)


@login_required
@require_GET
def version_choices(request: HttpRequest) -> HttpResponse:
    """The recent-versions fragment of the Deploy page for the chosen services (progressive
    enhancement: the page reloads it when the service selection changes)."""
    form = DeployForm(initial={"services": request.GET.getlist("services")}, user=_user(request))
    context = {"recent": selectors.recent_versions(_chosen_services(form)), "picked": ""}
    return render(request, "deployments/_versions.html", context)


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
        "can_cancel": deployment.can_be_cancelled and may_cancel(user, deployment),
        "can_redeploy": finished
        and can(user, Verb.DEPLOY, service=deployment.service, environment=deployment.environment),
        "can_roll_back": deployment.can_be_reverted,
        "timeline": _timeline(user, deployment),
        "snapshot_services": sorted((snapshot.get("services") or {}).items()),
        "snapshot_error": snapshot.get("error", ""),
        "compare_form": CompareForm(initial={"a": deployment.pk}),
    }
    return render(request, "deployments/detail.html", context)


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
        messages.error(request, "Only a finished deployment with that version can be redeployed.")
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
                user=user, deployment=deployment, message=form.cleaned_data["message"]
            )
        except InvalidTransition as exc:
            messages.error(request, f"Not rolled back: {exc}.")
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
