"""The Jolokia tunnel: /environments/<env>/pods/<pod>/jolokia/<path> through the API server's
pod proxy (F8).

A pod declares Jolokia with the annotation ``apollo.io/jolokia-port: "8778"`` or a container
port named ``jolokia`` (the annotation wins); other pods answer 404. Reading (GET, or POST of
read/list/search/version requests) needs ``view_logs`` on the pod's service; a ``write`` or
``exec`` request (in a POST body, a GET path or a ``p`` parameter) may change the running JVM
and needs ``restart`` as well. Any other type is refused with 400, and the ``target`` key
(the agent's proxy mode) is removed from every request, in bulk requests too. A path
with ``.``/``..`` segments is refused: the API server would resolve it outside the pod proxy,
with Apollo's own credentials.
Only GET and POST pass, bodies are limited to JOLOKIA_MAX_BODY bytes and must be JSON, and an
answer larger than JOLOKIA_MAX_RESPONSE bytes is refused with 502.
"""

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from environments import kube, services
from environments.live.state import jolokia_port
from environments.models import Environment
from environments.names import InvalidName, check_object_name
from permissions.verbs import Verb

READING = {"read", "list", "search", "version"}
MUTATING = {"write", "exec"}
# A GET of the agent's root ("/jolokia/") is its version.
GET_READING = READING | {""}


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": status, "error": message}, status=status)


def _requests(body: bytes) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
        return None
    items = data if isinstance(data, list) else [data]
    return items if all(isinstance(item, dict) for item in items) else None


def _post_types(payload: list[dict[str, Any]]) -> list[str]:
    return [str(item.get("type", "")).strip().lower() for item in payload]


def _get_types(request: HttpRequest, path: str) -> list[str]:
    """The request types of a GET: the first segment of the path and of every ``p`` value
    (servlets read the first ``p``, Django the last; ``;params`` are cut as servlets do)."""
    targets = [path, *request.GET.getlist("p")]
    return [t.strip("/").split("/", 1)[0].split(";", 1)[0].strip().lower() for t in targets]


def _without_target(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # SECURITY: `target` makes the agent a proxy to any JMX URL it can reach (proxy mode):
    # never forwarded, whatever its spelling, in a single or a bulk request.
    return [{k: v for k, v in item.items() if str(k).lower() != "target"} for item in payload]


def _climbs(path: str) -> bool:
    segments = path.replace("\\", "/").split("/")
    return any(segment.split(";", 1)[0] in (".", "..") for segment in segments)


def _refusal(request: HttpRequest, path: str) -> tuple[JsonResponse | None, Any, bool]:
    """(an error answer or None, the POST payload without `target`, whether it mutates).

    Checks that need no cluster: the path, the body's size and shape, the request types."""
    # SECURITY: dot segments would leave pods/<pod>:<port>/proxy/ on the API server.
    if _climbs(path):
        return _error(400, "the path may not contain . or .. segments"), None, False
    if request.method != "POST":
        types, allowed, payload = _get_types(request, path), GET_READING | MUTATING, None
    else:
        # SECURITY: bounded body, JSON only.
        if len(request.body) > _limit("APOLLO_JOLOKIA_MAX_BODY", 64 * 1024):
            return _error(413, "request body too large"), None, False
        payload = _requests(request.body)
        if payload is None:
            message = "the body must be a Jolokia JSON request or a list of them"
            return _error(400, message), None, False
        types, allowed, payload = _post_types(payload), READING | MUTATING, _without_target(payload)
    refused = sorted({t for t in types if t not in allowed})
    if refused:
        shown = ", ".join(repr(t[:40]) for t in refused)
        message = f"unsupported Jolokia request type {shown}: use read, list, search, version"
        return (
            _error(400, f"{message} (or write and exec with the restart permission)"),
            None,
            False,
        )
    return None, payload, any(t in MUTATING for t in types)


@login_required
@require_http_methods(["GET", "POST"])
def proxy(request: HttpRequest, name: str, pod: str, path: str) -> HttpResponse:
    environment = Environment.objects.select_related("cluster").filter(name=name).first()
    if environment is None:
        raise Http404("no such environment")
    user = request.user
    assert isinstance(user, User)
    try:
        check_object_name(pod, what="pod")  # SECURITY: before anything reaches the cluster
    except InvalidName as exc:
        return _error(400, str(exc))
    # SECURITY: the permission is asked before the cluster (which says whose pod it is).
    services.require_here(user, Verb.VIEW_LOGS, environment=environment)
    error, payload, mutating = _refusal(request, path)
    if error is not None:
        return error
    try:
        target = services.find_pod(environment, pod)
    except services.NotFound as exc:
        raise Http404(str(exc)) from None
    except (kube.ClusterUnreachable, kube.KubeError) as exc:
        return _error(502, f"cluster: {exc}")
    services.require(user, Verb.VIEW_LOGS, environment=environment, service=target.service)
    if mutating:  # SECURITY: write and exec may change the running JVM.
        services.require(user, Verb.RESTART, environment=environment, service=target.service)
    port = jolokia_port(target.pod)
    if port is None:
        raise Http404(f"pod {pod} declares no Jolokia port")
    return _forward(request, environment, target.name, port, path, payload)


def _forward(
    request: HttpRequest, environment: Environment, pod: str, port: int, path: str, payload: Any
) -> HttpResponse:
    max_bytes = _limit("APOLLO_JOLOKIA_MAX_RESPONSE", 1024 * 1024)
    body = None
    if payload is not None:
        body = payload if len(payload) != 1 or request.body.lstrip()[:1] == b"[" else payload[0]
    try:
        answer = kube.proxy_pod(
            environment.cluster,
            environment.namespace,
            pod,
            port=port,
            path=f"jolokia/{path}",
            method=request.method or "GET",
            body=body,
            query=[(k, str(v)) for k in request.GET for v in request.GET.getlist(k)],
            max_bytes=max_bytes,
        )
    except kube.ClusterUnreachable as exc:
        return _error(502, f"cluster unreachable: {exc}")
    except kube.KubeError as exc:
        return _error(502, f"cluster: {exc}")
    if len(answer.body) > max_bytes:
        return _error(502, "the Jolokia answer is too large")
    response = HttpResponse(
        answer.body, status=answer.status, content_type=answer.content_type or "application/json"
    )
    # SECURITY: an agent's answer is data, never a page of this origin.
    response["Content-Security-Policy"] = "default-src 'none'"
    response["X-Content-Type-Options"] = "nosniff"
    return response
