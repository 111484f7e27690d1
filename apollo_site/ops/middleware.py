"""Two middlewares, first in settings.MIDDLEWARE.

RequestContextMiddleware: gives each request an id (a safe ``X-Request-ID`` from the client or
the proxy, else a new one), echoes it in the response, keeps it and the request for log lines
(ops.context) and observes the request's latency by route: the URL pattern's name, never the
raw path (ids and names in paths would make one time series per object).

ProbeMiddleware: answers ``/healthz``, ``/readyz`` and ``/metrics`` before anything else runs:
no host check (a kubelet probes by pod IP, which ALLOWED_HOSTS does not list), no session, no
HTTPS redirect, no throttle, no log line at INFO.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse

from apollo_site.ops import context, views
from apollo_site.ops.metrics import REQUEST_LATENCY

# /metrics too: Prometheus scrapes a pod by its address as well (the view checks its token).
_PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    "/metrics": views.metrics,
}


class _Both:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)  # type: ignore[type-var]


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else "unmatched"


class RequestContextMiddleware(_Both):
    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        started, tokens = self._begin(request)
        try:
            response = self.get_response(request)
        finally:
            self._end(tokens)
        return self._finish(request, response, started)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started, tokens = self._begin(request)
        try:
            response: HttpResponse = await self.get_response(request)
        finally:
            self._end(tokens)
        return self._finish(request, response, started)

    def _begin(self, request: HttpRequest) -> tuple[float, tuple[Any, Any]]:
        rid = context.accepted_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = rid  # type: ignore[attr-defined]
        tokens = (context.request_id.set(rid), context.current_request.set(request))
        return time.perf_counter(), tokens

    def _end(self, tokens: tuple[Any, Any]) -> None:
        context.request_id.reset(tokens[0])
        context.current_request.reset(tokens[1])

    def _finish(self, request: HttpRequest, response: HttpResponse, started: float) -> HttpResponse:
        route = getattr(request, "probe_route", None) or _route(request)
        REQUEST_LATENCY.labels(route, request.method or "", str(response.status_code)).observe(
            time.perf_counter() - started
        )
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response


class ProbeMiddleware(_Both):
    def __call__(self, request: HttpRequest) -> Any:
        probe = _PROBES.get(request.path_info)
        if iscoroutinefunction(self):
            return self._acall(request, probe)
        if probe is not None:
            request.probe_route = probe.__name__  # type: ignore[attr-defined]
            return probe(request)
        return self.get_response(request)

    async def _acall(
        self, request: HttpRequest, probe: Callable[[HttpRequest], HttpResponse] | None
    ) -> HttpResponse:
        if probe is not None:
            request.probe_route = probe.__name__  # type: ignore[attr-defined]
            return await sync_to_async(probe)(request)
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response
