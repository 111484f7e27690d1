"""Group pages: a service's page (versions, groups per environment, group management and
scaling) and the batch page that follows every deployment of one Deploy request, one row per
group, with cancel per group or for all. Every change is a POST to a service, then a redirect."""

import uuid
from functools import partial
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployments.controls import from_gate
from deployments.forms import GroupChangeForm, GroupCreateForm, ScaleForm
from deployments.live import batch_message
from deployments.models import DeployableVersion, Deployment, Group, InvalidTransition, Service
from deployments.selectors import batch_deployments, batch_state
from deployments.services import groups as group_services
from deployments.services.bad_versions import BadVersionError
from deployments.services.deploy import cancel_deployment, revert_deployment
from deployments.status import Status
from environments import kube
from environments import services as environment_services
from environments.models import Environment
from permissions.selectors import allowed_targets, visibility
from permissions.services import explain
from permissions.verbs import Verb

RECENT_VERSIONS = 10


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # behind login_required
    return request.user


# -- the service page -----------------------------------------------------------------------


@login_required
@require_GET
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Versions, and per environment its groups with what they run; forms where allowed."""
    user = _user(request)
    service = _service_or_404(user, name)
    seen = visibility(user)
    # SECURITY: only the environments the user may view show.
    manage = {e for s, e in allowed_targets(user, Verb.MANAGE) if s == service.pk}
    # The Deploy and Logs links and the Scale forms are enabled where allowed, disabled with
    # the gate's sentence where the verb is held elsewhere, absent otherwise (one read per verb).
    held = {verb: allowed_targets(user, verb) for verb in SECTION_VERBS}
    here = {verb: {e for s, e in pairs if s == service.pk} for verb, pairs in held.items()}
    scale, deploy, logs = here[Verb.RESTART], here[Verb.DEPLOY], here[Verb.VIEW_LOGS]
    groups = list(Group.objects.filter(service=service).with_status())
    environments = [
        e
        for e in Environment.objects.order_by("availability", "name")
        if seen.sees(service_id=service.pk, environment_id=e.pk)
    ]
    sections = [
        {
            "environment": environment,
            "groups": [g for g in groups if g.environment_id == environment.pk],
            "may_manage": environment.pk in manage,
            "may_scale": environment.pk in scale,
            "may_deploy": environment.pk in deploy,
            "may_view_logs": environment.pk in logs,
            "controls": {
                verb.value: from_gate(
                    allowed=environment.pk in here[verb],
                    holds_verb=bool(held[verb]),
                    why=partial(_refusal, user, verb, service, environment),
                )
                for verb in SECTION_VERBS
            },
        }
        for environment in environments
    ]
    context = {
        "service": service,
        "versions": DeployableVersion.objects.filter(service=service)[:RECENT_VERSIONS],
        "sections": [s for s in sections if s["groups"] or s["may_manage"]],
        "create_form": GroupCreateForm(
            environments=Environment.objects.filter(pk__in=manage),
        ),
        "may_create": bool(manage),
        "may_deploy": bool(deploy),
    }
    return render(request, "deployments/service.html", context)


SECTION_VERBS = (Verb.DEPLOY, Verb.VIEW_LOGS, Verb.RESTART)


def _refusal(user: User, verb: Verb, service: Service, environment: Environment) -> str:
    return explain(user, verb, service=service, environment=environment).reason


def _service_page(service: Service) -> HttpResponse:
    return redirect("service-detail", name=service.name)


def _service_or_404(user: User, name: str) -> Service:
    """SECURITY: a service the user may view nowhere is a 404, on its page and its actions alike
    (a refusal that redirects to the service's page would tell that it exists)."""
    service = get_object_or_404(Service, name=name)
    if not visibility(user).sees(service_id=service.pk, environment_id=None):
        raise Http404(f"No service '{name}'.")
    return service


def _group_or_404(user: User, service_name: str, group_id: int) -> Group:
    """SECURITY: a group of a (service, environment) the user may not view is a 404."""
    group = get_object_or_404(
        Group.objects.select_related("service", "environment__cluster"),
        pk=group_id,
        service__name=service_name,
    )
    if not visibility(user).sees(service_id=group.service_id, environment_id=group.environment_id):
        raise Http404(f"No group {group_id} of service '{service_name}'.")
    return group


def _report(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@login_required
@require_POST
def group_create(request: HttpRequest, name: str) -> HttpResponse:
    service = _service_or_404(_user(request), name)
    form = GroupCreateForm(request.POST, environments=Environment.objects.all())
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return _service_page(service)
    data = form.cleaned_data
    try:
        group = group_services.create_group(
            user=_user(request),
            service=service,
            environment=data["environment"],
            name=data["name"],
            scaling_factor=data["scaling_factor"],
            variables=data["variables"],
        )
    except PermissionDenied as exc:
        messages.error(request, f"Not created: {exc}")
    except ValidationError as exc:
        _report(request, exc)
    else:
        messages.success(request, f"Group {group.name} created in {group.environment.name}.")
    return _service_page(service)


@login_required
@require_POST
def group_change(request: HttpRequest, name: str, group_id: int) -> HttpResponse:
    group = _group_or_404(_user(request), name, group_id)
    form = GroupChangeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return _service_page(group.service)
    try:
        group_services.update_group(user=_user(request), **form.cleaned_data, group=group)
    except PermissionDenied as exc:
        messages.error(request, f"Not changed: {exc}")
    except ValidationError as exc:
        _report(request, exc)
    else:
        messages.success(request, f"Group {group.name} saved.")
    return _service_page(group.service)


@login_required
@require_POST
def group_delete(request: HttpRequest, name: str, group_id: int) -> HttpResponse:
    group = _group_or_404(_user(request), name, group_id)
    try:
        group_services.delete_group(user=_user(request), group=group)
    except PermissionDenied as exc:
        messages.error(request, f"Not removed: {exc}")
    except ValidationError as exc:
        _report(request, exc)
    else:
        messages.success(request, f"Group {group.name} removed.")
    return _service_page(group.service)


@login_required
@require_POST
def group_scale(request: HttpRequest, name: str, group_id: int) -> HttpResponse:
    group = _group_or_404(_user(request), name, group_id)
    form = ScaleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return _service_page(group.service)
    replicas = form.cleaned_data["replicas"]
    try:
        group_services.scale_group(user=_user(request), group=group, replicas=replicas)
    except PermissionDenied as exc:
        messages.error(request, f"Not scaled: {exc}")
    except ValueError as exc:  # out of range, locked or blocked
        messages.error(request, f"Not scaled: {exc}")
    except environment_services.NotFound as exc:
        messages.error(request, f"Not scaled: {exc}")
    except (kube.ClusterUnreachable, kube.KubeError) as exc:
        messages.error(request, f"Not scaled: the cluster refused or did not answer: {exc}")
    else:
        messages.success(request, f"{group.service.name}/{group.name} scaled to {replicas}.")
    return _service_page(group.service)


def _form_errors(form: Any) -> str:
    return " ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())


# -- one batch: the deployments of one Deploy request --------------------------------------


def _batch_or_404(user: User, batch: uuid.UUID) -> list[Deployment]:
    # SECURITY: only the rows the user may view; none at all is a 404.
    deployments = batch_deployments(batch, user=user)
    if not deployments:
        raise Http404("No such batch of deployments.")
    return deployments


@login_required
@require_GET
def batch_detail(request: HttpRequest, batch: uuid.UUID) -> HttpResponse:
    user = _user(request)
    state = batch_state(user, _batch_or_404(user, batch))
    return render(request, "deployments/batch.html", {"batch": batch, **state})


@login_required
@require_GET
def batch_status(request: HttpRequest, batch: uuid.UUID) -> JsonResponse:
    """The rows as JSON: what the batch page polls when its websocket cannot connect."""
    user = _user(request)
    return JsonResponse(batch_message(batch_state(user, _batch_or_404(user, batch))))


@login_required
@require_POST
def batch_cancel(request: HttpRequest, batch: uuid.UUID) -> HttpResponse:
    """Cancel one deployment of the batch (`deployment=<id>`) or every one still running
    (`all=1`), each through cancel_deployment (permission, then the state machine)."""
    user = _user(request)
    deployments = _batch_or_404(user, batch)
    if request.POST.get("all"):
        chosen = [d for d in deployments if not Status(d.status).is_terminal]
    else:
        chosen = [d for d in deployments if str(d.pk) == request.POST.get("deployment")]
        if not chosen:
            raise Http404("That deployment is not part of this batch.")
    cancelled, problems = [], []
    for deployment in chosen:
        label = _label(deployment)
        try:
            cancel_deployment(user=user, deployment=deployment)
        except (PermissionDenied, InvalidTransition) as exc:
            problems.append(f"{label}: {exc or 'you may not cancel it'}")
        else:
            cancelled.append(label)
    if cancelled:
        messages.success(request, f"Cancelling {', '.join(cancelled)}.")
    if problems:
        messages.error(request, f"Not cancelled: {'; '.join(problems)}.")
    if not chosen:
        messages.info(request, "Nothing left to cancel: every deployment has finished.")
    return redirect("deployment-batch", batch=batch)


@login_required
@require_POST
def batch_revert(request: HttpRequest, batch: uuid.UUID) -> HttpResponse:
    """Revert one deployment of the batch (`deployment=<id>`) or all of them (`all=1`).

    A deployment still in progress is cancelled (the worker rolls a started one back). A
    finished one (DONE or FAILED) is followed by a deployment of the version that ran before
    it, through the full gate (permission, blockers); those form a new batch, shown next."""
    user = _user(request)
    deployments = _batch_or_404(user, batch)
    if not request.POST.get("all"):
        deployments = [d for d in deployments if str(d.pk) == request.POST.get("deployment")]
        if not deployments:
            raise Http404("That deployment is not part of this batch.")
    reverts = uuid.uuid4()
    done: list[str] = []
    problems: list[str] = []
    mark_bad = request.POST.get("mark_bad_reason", "") if request.POST.get("mark_bad") else None
    for deployment in deployments:
        problem = _revert_one(user, deployment, reverts, mark_bad)
        (problems if problem else done).append(problem or _label(deployment))
    if done:
        messages.success(request, f"Reverting {', '.join(done)}.")
    if problems:
        messages.error(request, f"Not reverted: {'; '.join(problems)}.")
    if Deployment.objects.filter(batch=reverts).exists():
        return redirect("deployment-batch", batch=reverts)
    return redirect("deployment-batch", batch=batch)


def _label(deployment: Deployment) -> str:
    group = f"/{deployment.group.name}" if deployment.group else ""
    return f"#{deployment.pk} {deployment.service.name}{group}"


def _revert_one(
    user: User, deployment: Deployment, batch: uuid.UUID, mark_bad: str | None = None
) -> str:
    """ "" when the revert was requested, else why not."""
    try:
        outcome = revert_deployment(
            user=user, deployment=deployment, batch=batch, mark_bad=mark_bad
        )
    except (PermissionDenied, InvalidTransition, BadVersionError) as exc:
        return f"{_label(deployment)}: {exc or 'you may not cancel it'}"
    if outcome is not None and outcome.kind != "created":
        return f"{_label(deployment)}: {outcome.reason or outcome.kind}"
    return ""
