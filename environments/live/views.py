from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployments.models import Group, Service
from deployments.selectors import latest_deployments
from deployments.services import groups as group_services
from environments import kube, services
from environments.live import watcher
from environments.live.consumers import render_state, visible_state
from environments.live.state import jolokia_port, load_records
from environments.models import Environment
from environments.names import InvalidName, check_container_name, check_object_name
from permissions.selectors import (
    Visibility,
    visibility,
    visible_service_names,
)
from permissions.verbs import Verb

LATEST_DEPLOYMENTS = 20
DEFAULT_TAIL = 200
MAX_TAIL = 5000


def _environments_for_table(seen: Visibility) -> QuerySet[Environment]:
    """What environments/_table.html shows, without the variables (JSON) or cluster credentials:
    the environments the user may view."""
    environments = Environment.objects.all()
    if not seen.everything:
        environments = environments.filter(pk__in=sorted(seen.environment_ids))
    return (
        environments.select_related("cluster")
        .only("name", "availability", "region", "namespace", "cluster__name")
        .order_by("availability", "name")
    )


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    seen = visibility(request.user)  # once for both tables
    environments = _environments_for_table(seen)
    latest = latest_deployments(_user(request), LATEST_DEPLOYMENTS, seen=seen)
    return render(
        request, "environments/home.html", {"environments": environments, "latest": latest}
    )


@login_required
@require_GET
def environment_list(request: HttpRequest) -> HttpResponse:
    environments = _environments_for_table(visibility(request.user))
    return render(request, "environments/list.html", {"environments": environments})


def _environment(name: str) -> Environment:
    return get_object_or_404(Environment.objects.select_related("cluster"), name=name)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@login_required
@require_GET
def environment_detail(request: HttpRequest, name: str) -> HttpResponse:
    """The live status page. It makes no Kubernetes call: the shared watch feeds its socket.

    The page is complete before its socket connects (or without JavaScript): the status the
    shared watch last published, if anybody is watching, and Apollo's own records. The action
    buttons come with the live status only, where they ask for confirmation."""
    environment = _environment(name)
    # SECURITY: an environment the user may view nothing of is a 404; only its services they
    # may view are shown (the socket applies the same rule).
    if not visibility(request.user).sees(service_id=None, environment_id=environment.pk):
        raise Http404(f"No environment '{name}'.")
    names = visible_service_names(request.user, environment)
    state = watcher.shared_state(environment.pk)
    state = visible_state(state, names) if state is not None else None
    records = load_records(environment.pk, set())
    last_done = [
        {"service": service, "group": group, **record}
        for (service, group), record in sorted(records.last_done.items())
        if names is None or service in names
    ]
    context = {
        "environment": environment,
        "state_html": render_state(state, environment, {}) if state is not None else "",
        "state": state,
        "last_done": last_done,
    }
    return render(request, "environments/detail.html", context)


def _back(environment: Environment) -> HttpResponse:
    return redirect("environment-detail", name=environment.name)


def _bad_name(exc: InvalidName) -> HttpResponse:
    return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")


def _checked_names(pod: str, container: str) -> InvalidName | None:
    """SECURITY: names from the URL or query checked before anything reaches the cluster."""
    try:
        if pod:
            check_object_name(pod, what="pod")
        if container:
            check_container_name(container)
    except InvalidName as exc:
        return exc
    return None


def _cluster_error(request: HttpRequest, exc: Exception) -> None:
    messages.error(request, f"The cluster refused or did not answer: {exc}")


@login_required
@require_POST
def restart_pod(request: HttpRequest, name: str, pod: str) -> HttpResponse:
    environment = _environment(name)
    try:
        services.restart_pod(user=_user(request), environment=environment, pod_name=pod)
    except InvalidName as exc:
        return _bad_name(exc)
    except services.NotFound as exc:
        raise Http404(str(exc)) from None
    except (kube.ClusterUnreachable, kube.KubeError) as exc:
        _cluster_error(request, exc)
    else:
        messages.success(request, f"Pod {pod} deleted; its replacement is starting.")
    return _back(environment)


@login_required
@require_POST
def restart_service(request: HttpRequest, name: str, service: str) -> HttpResponse:
    environment = _environment(name)
    target = get_object_or_404(Service, name=service)
    group = request.POST.get("group", "")
    try:
        services.rollout_restart(
            user=_user(request), environment=environment, service=target, group=group
        )
    except services.RestartRefused as exc:
        messages.error(request, f"Cannot restart: {exc}")
    except services.NotFound as exc:
        raise Http404(str(exc)) from None
    except (kube.ClusterUnreachable, kube.KubeError) as exc:
        _cluster_error(request, exc)
    else:
        where = f"{service}/{group}" if group else service
        messages.success(request, f"Rolling restart of {where} started.")
    return _back(environment)


@login_required
@require_POST
def scale_group(request: HttpRequest, name: str, group_id: int) -> HttpResponse:
    environment = _environment(name)
    group = get_object_or_404(
        Group.objects.select_related("service", "environment__cluster"),
        pk=group_id,
        environment=environment,
    )
    posted = request.POST.get("replicas", "")
    # Not a number: -1, which the service refuses as out of range once the gate allowed.
    replicas = int(posted) if posted.isascii() and posted.isdigit() else -1
    try:
        # The group service asks the gate (PermissionDenied: 403) and refuses a locked or
        # blocked group (ScalingRefused, a ValueError).
        group_services.scale_group(user=_user(request), group=group, replicas=replicas)
    except ValueError as exc:
        messages.error(request, f"Cannot scale: {exc}")
    except services.NotFound as exc:
        raise Http404(str(exc)) from None
    except (kube.ClusterUnreachable, kube.KubeError) as exc:
        _cluster_error(request, exc)
    else:
        messages.success(request, f"{group.service.name}/{group.name} scaled to {replicas}.")
    return _back(environment)


def _find_pod(request: HttpRequest, environment: Environment, pod: str) -> services.PodTarget:
    try:
        return services.find_pod(environment, pod)
    except services.NotFound as exc:
        raise Http404(str(exc)) from None


@login_required
@require_GET
def logs(request: HttpRequest, name: str) -> HttpResponse:
    """LiveTail: `?service=S[&group=G]` for all pods of a service, `?pod=P` for one pod."""
    environment = _environment(name)
    pod_name, service_name = request.GET.get("pod", ""), request.GET.get("service", "")
    invalid = _checked_names(pod_name, request.GET.get("container", ""))
    if invalid is not None:
        return _bad_name(invalid)
    context: dict[str, object] = {"environment": environment, "group": request.GET.get("group", "")}
    if pod_name:
        services.require_here(_user(request), Verb.VIEW_LOGS, environment=environment)
        try:
            target = _find_pod(request, environment, pod_name)
        except (kube.ClusterUnreachable, kube.KubeError) as exc:
            _cluster_error(request, exc)
            return _back(environment)
        services.require(
            _user(request), Verb.VIEW_LOGS, environment=environment, service=target.service
        )
        context.update(
            pod=target.name,
            containers=target.pod["spec"]["containers"],
            service=target.service.name if target.service else "",
            not_started=why_no_logs(target.pod, request.GET.get("container", "")),
        )
    elif service_name:
        service = get_object_or_404(Service, name=service_name)
        services.require(_user(request), Verb.VIEW_LOGS, environment=environment, service=service)
        context.update(pod="", containers=[], service=service.name)
    else:
        raise Http404("choose a pod or a service")
    context.update(tail=_tail(request), container=request.GET.get("container", ""))
    context["previous"] = request.GET.get("previous") == "1"
    return render(request, "environments/logs.html", context)


# Waiting reasons that mean the image cannot be had: the pod will not start by waiting.
IMAGE_PROBLEMS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


def why_no_logs(pod: dict[str, Any], container: str) -> str:
    """Why a pod's container has no log to show yet, in words; "" when it has run."""
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    chosen = [c for c in statuses if c.get("name") == container] or statuses[:1]
    if not chosen:
        phase = status.get("phase") or "Pending"
        return (
            f"The pod is {phase} and none of its containers has been created yet (waiting "
            "for a node or for its volumes): no logs until it starts."
        )
    waiting = (chosen[0].get("state") or {}).get("waiting")
    if waiting is None or chosen[0].get("restartCount"):
        return ""
    reason, message = str(waiting.get("reason") or "waiting"), str(waiting.get("message") or "")
    detail = f"{reason}: {message}" if message else reason
    if reason in IMAGE_PROBLEMS:
        return (
            f"The container never started: its image cannot be pulled ({detail}). There will "
            "be no logs until the image exists; deploy a version whose image was built."
        )
    return (
        f"The container has not started yet ({detail}): no logs yet; they appear here as "
        "soon as it writes them."
    )


def _tail(request: HttpRequest) -> int:
    try:
        return max(0, min(int(request.GET.get("tail", DEFAULT_TAIL)), MAX_TAIL))
    except ValueError:
        return DEFAULT_TAIL


@login_required
@require_GET
def shell(request: HttpRequest, name: str, pod: str) -> HttpResponse:
    environment = _environment(name)
    invalid = _checked_names(pod, request.GET.get("container", ""))
    if invalid is not None:
        return _bad_name(invalid)
    services.require_here(_user(request), Verb.EXEC, environment=environment)
    try:
        target = _find_pod(request, environment, pod)
    except (kube.ClusterUnreachable, kube.KubeError) as exc:
        _cluster_error(request, exc)
        return _back(environment)
    services.require(_user(request), Verb.EXEC, environment=environment, service=target.service)
    containers = [c["name"] for c in target.pod["spec"]["containers"]]
    return render(
        request,
        "environments/shell.html",
        {
            "environment": environment,
            "pod": target.name,
            "containers": containers,
            "container": request.GET.get("container") or containers[0],
            "jolokia_port": jolokia_port(target.pod),
        },
    )
