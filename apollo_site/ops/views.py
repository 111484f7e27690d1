"""Probes and metrics for the platform that runs Apollo: unauthenticated probes, a protected
Prometheus endpoint. ops.middleware answers the probes before host checks and sessions."""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from apollo_site.ops.metrics import DATABASE_REGISTRY
from permissions.throttling import client_address

logger = logging.getLogger(__name__)
_migrations_applied = False  # once true, true for the life of the process (same code)


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. No dependency is checked (a database outage must not get
    every web pod restarted)."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: the database answers, Redis answers (when configured) and every
    migration is applied. Clusters are listed but do not decide readiness: an unreachable
    cluster is the users' news, not a reason to take Apollo out of the load balancer."""
    checks = {"database": _check_database(), "migrations": _check_migrations()}
    if settings.APOLLO_REDIS_URL:
        checks["redis"] = _check_redis(settings.APOLLO_REDIS_URL)
    ready = all(value == "ok" for value in checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": checks,
        "clusters": _cluster_names() if checks["database"] == "ok" else [],
        # Reported, not a readiness failure: the pages work without a worker (deployments
        # wait), and taking the web out of the load balancer would not start one.
        "workers": _check_workers() if checks["database"] == "ok" else "unknown",
    }
    response = JsonResponse(body, status=200 if ready else 503)
    if not ready:
        logger.debug("not ready: %s", checks)
        response._has_been_logged = True  # type: ignore[attr-defined]  # a probe is no WARNING
    return response


def _check_database() -> str:
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _check_migrations() -> str:
    global _migrations_applied
    if _migrations_applied:
        return "ok"
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return f"unavailable: {type(exc).__name__}"
    if plan:
        return f"{len(plan)} migration(s) not applied"
    _migrations_applied = True
    return "ok"


def _check_redis(url: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _check_workers() -> str:
    """ "ok" while a deployment worker beats; otherwise how long since one was seen."""
    from deployments.engine.heartbeat import worker_absence

    try:
        return worker_absence() or "ok"
    except DatabaseError:
        return "unknown"


def _cluster_names() -> list[str]:
    from environments.models import Cluster

    try:
        return list(Cluster.objects.order_by("name").values_list("name", flat=True))
    except DatabaseError:
        return []


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for a scraper that presents APOLLO_METRICS_TOKEN as a bearer
    token or connects from an address of APOLLO_METRICS_ALLOW. Off (404) when neither is set."""
    if not settings.APOLLO_METRICS_TOKEN and not settings.APOLLO_METRICS_ALLOW:
        raise Http404("metrics are off: set APOLLO_METRICS_TOKEN or APOLLO_METRICS_ALLOW")
    if not _may_scrape(request):
        response = HttpResponse(
            "A metrics token or an allowed address is required.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
        return response
    body = generate_latest(REGISTRY) + generate_latest(DATABASE_REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _may_scrape(request: HttpRequest) -> bool:
    # SECURITY: either the token (compared in constant time) or an allowed client address
    # (X-Forwarded-For only behind APOLLO_PROXY_COUNT trusted proxies, as for throttles).
    token = settings.APOLLO_METRICS_TOKEN
    header = str(request.META.get("HTTP_AUTHORIZATION", ""))
    scheme, _, presented = header.partition(" ")
    if token and scheme.lower() == "bearer" and presented:  # noqa: SIM102
        if hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in network for network in settings.APOLLO_METRICS_ALLOW)
