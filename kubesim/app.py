"""The aiohttp application: authentication, authorisation, fault injection, routing."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Middleware

from kubesim import discovery
from kubesim.cluster import Cluster
from kubesim.control import Control
from kubesim.errors import ApiError, failure_status, forbidden
from kubesim.exec import ExecHandler
from kubesim.http import STREAMING, KubeHandlers, Route, json_response, parse_route
from kubesim.logs import LogBook
from kubesim.logs_http import LogHandler
from kubesim.proxy import ProxyHandler

log = logging.getLogger("kubesim.app")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = {"/version", "/healthz", "/livez", "/readyz"}
ADMIN_USER = "kubesim-admin"
LIMITED_USER = "kubesim-limited"


@dataclass
class AccessPolicy:
    """Two bearer tokens. The limited one mirrors the built-in `view` ClusterRole: read-only,
    no secrets, and no pods/exec, pods/attach, pods/portforward or pods/proxy."""

    token: str
    limited_token: str | None = None
    limited_verbs: frozenset[str] = frozenset({"get", "list", "watch"})
    limited_denied: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {
                "secrets",
                "pods/exec",
                "pods/attach",
                "pods/portforward",
                "pods/proxy",
                "services/proxy",
            }
        )
    )

    def user_for(self, header: str) -> str | None:
        # SECURITY: constant-time comparison of bearer tokens.
        if not header.startswith("Bearer "):
            return None
        presented = header[len("Bearer ") :].strip().encode()
        if hmac.compare_digest(presented, self.token.encode()):
            return ADMIN_USER
        if self.limited_token and hmac.compare_digest(presented, self.limited_token.encode()):
            return LIMITED_USER
        return None

    def check(self, user: str, request: web.Request, route: Route) -> None:
        if user == ADMIN_USER:
            return
        verb = request_verb(request, route)
        resource = route.rtype.plural + (f"/{route.subresource}" if route.subresource else "")
        if verb in self.limited_verbs and resource not in self.limited_denied:
            return
        raise forbidden(user, verb, resource, route.rtype.group, route.namespace, route.name)


def request_verb(request: web.Request, route: Route) -> str:
    if route.subresource in ("exec", "attach", "portforward"):
        return "create"
    method = request.method
    if method == "GET":
        if not route.name:
            return "watch" if request.query.get("watch") in ("true", "1") else "list"
        return "get"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if route.name else "deletecollection",
    }.get(method, method.lower())


def error_response(error: ApiError) -> web.Response:
    return json_response(error.status(), status=error.code)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        if request.get(STREAMING):
            raise  # headers are gone already: a Status now would corrupt the stream
        return error_response(error)
    except web.HTTPException:
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        if request.get(STREAMING):
            raise
        log.exception("internal error on %s %s", request.method, request.path)
        return json_response(
            failure_status(500, f"Internal error occurred: {exc}", "InternalError"), 500
        )


def faults_middleware(cluster: Cluster) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_kubesim"):
            return await handler(request)
        faults = cluster.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.drop_rate and faults.rng.random() < faults.drop_rate:
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("kubesim dropped the connection (fault injection)")
        if faults.fail_next > 0 or (faults.error_rate and faults.rng.random() < faults.error_rate):
            faults.fail_next = max(faults.fail_next - 1, 0)
            code = 503 if faults.rng.random() < 0.5 else 500
            reason = "ServiceUnavailable" if code == 503 else "InternalError"
            message = (
                "the server is currently unable to handle the request"
                if code == 503
                else "Internal error occurred: injected fault"
            )
            return json_response(failure_status(code, message, reason), code)
        return await handler(request)

    return middleware


class KubeApp:
    def __init__(
        self, cluster: Cluster, policy: AccessPolicy, control: Control, book: LogBook
    ) -> None:
        self.cluster = cluster
        self.policy = policy
        self.control = control
        self.logs = LogHandler(cluster, book)
        self.exec = ExecHandler(cluster)
        self.proxy = ProxyHandler(cluster)
        self.handlers = KubeHandlers(
            cluster,
            {
                "log": lambda route, req: self.logs(route.namespace, route.name, req),
                "exec": lambda route, req: self.exec(route.namespace, route.name, req),
                "proxy": lambda route, req: self.proxy(
                    route.namespace, route.name, route.rest, req
                ),
            },
        )

    def build(self) -> web.Application:
        app = web.Application(
            middlewares=[errors_middleware, faults_middleware(self.cluster)],
            client_max_size=16 * 1024 * 1024,
        )
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in OPEN_PATHS:
            return self._open(path)
        user = self.policy.user_for(request.headers.get("Authorization", ""))
        if user is None:
            raise ApiError(401, "Unauthorized")
        if path.startswith("/_kubesim"):
            if user != ADMIN_USER:
                raise ApiError(403, "the control API needs the admin token")
            return await self.control.handle(request)
        found = await self.handlers.discovery(request) if request.method == "GET" else None
        if found is not None:
            return found
        route = parse_route(path, self.cluster.kinds)
        if route is None:
            raise ApiError(404, "the server could not find the requested resource")
        self.policy.check(user, request, route)
        return await self.handlers.handle(request, route)

    @staticmethod
    def _open(path: str) -> web.Response:
        if path == "/version":
            return json_response(discovery.version())
        return web.Response(text="ok")
