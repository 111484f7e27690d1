"""The Jolokia tunnel: /environments/<env>/pods/<pod>/jolokia/<path> through the API server's
pod proxy (F8).

A pod declares Jolokia with the annotation ``apollo.io/jolokia-port: "8778"`` or a container
port named ``jolokia`` (the annotation wins); other pods answer 404. Reading (GET, or POST of
read/list/search/version requests) needs ``view_logs`` on the pod's service; a ``write`` or
``exec`` request in a POST body, or a GET (path or ``p`` parameter) of any type other than
read/list/search/version, may change the running JVM and needs ``restart`` as well. A path
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
from environments.models import Environment
from environments.status import jolokia_port
from permissions.verbs import Verb

MUTATING = {"write", "exec"}
READING = {"", "read", "list", "search", "version"}


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


def _get_types(request: HttpRequest, path: str) -> list[str]:
    """The request types of a GET: the first segment of the path and of every ``p`` value
    (servlets read the first ``p``, Django the last; ``;params`` are cut as servlets do)."""
    targets = [path, *request.GET.getlist("p")]
    return [t.strip("/").split("/", 1)[0].split(";", 1)[0].strip().lower() for t in targets]


def _climbs(path: str) -> bool:
    segments = path.replace("\\", "/").split("/")
    return any(segment.split(";", 1)[0] in (".", "..") for segment in segments)


@login_required
@require_http_methods(["GET", "POST"])
def proxy(request: HttpRequest, name: str, pod: str, path: str) -> HttpResponse:
    environment = Environment.objects.select_related("cluster").filter(name=name).first()
    if environment is None:
        raise Http404("no such environment")
    user = request.user
    assert isinstance(user, User)
    payload: Any = None
    # SECURITY: dot segments would leave pods/<pod>:<port>/proxy/ on the API server.
    if _climbs(path):
        return _error(400, "the path may not contain . or .. segments")
    if request.method == "POST":
        # SECURITY: bounded body, JSON only; mutating requests need more than reading.
        if len(request.body) > _limit("APOLLO_JOLOKIA_MAX_BODY", 64 * 1024):
            return _error(413, "request body too large")
        payload = _requests(request.body)
        if payload is None:
            return _error(400, "the body must be a Jolokia JSON request or a list of them")
    try:
        target = services.find_pod(environment, pod)
    except services.NotFound as exc:
        raise Http404(str(exc)) from None
    except (kube.ClusterUnreachable, kube.KubeError) as exc:
        return _error(502, f"cluster: {exc}")
    services.require(user, Verb.VIEW_LOGS, environment=environment, service=target.service)
    if payload is not None:
        mutating = any(str(r.get("type", "")).lower() in MUTATING for r in payload)
    else:  # SECURITY: a GET may only read; any other type (exec, write, exec;x) needs more.
        mutating = any(kind not in READING for kind in _get_types(request, path))
    if mutating:
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
            environment.cluster, environment.namespace, pod, port=port,
            path=f"jolokia/{path}", method=request.method or "GET", body=body,
            query=[(k, str(v)) for k in request.GET for v in request.GET.getlist(k)],
            max_bytes=max_bytes,
        )  # fmt: skip
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
