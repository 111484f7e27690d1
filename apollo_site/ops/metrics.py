"""Apollo's Prometheus metrics.

Each process exposes its own (no multiprocess mode): the web process at ``/metrics``
(request latency, live tails and shells, its Kubernetes calls, and the database-wide
gauges read at scrape time), a worker at ``APOLLO_WORKER_METRICS_PORT`` when set (rollout
durations, its Kubernetes calls and watch restarts). The database-wide gauges (deployments
by status, the queue, leases) are served by the web process only, so that several workers
do not report the same rows.
"""

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

REQUEST_LATENCY = Histogram(
    "apollo_http_request_duration_seconds",
    "Time to answer an HTTP request, by route (the URL pattern's name), method and status.",
    ["route", "method", "status"],
)
ROLLOUT_DURATION = Histogram(
    "apollo_rollout_duration_seconds",
    "From the start of a rollout to its verdict, by outcome.",
    ["outcome"],
    buckets=(5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
KUBE_CALLS = Counter(
    "apollo_kubernetes_api_calls", "Calls to a Kubernetes API server, by verb.", ["verb"]
)
KUBE_ERRORS = Counter(
    "apollo_kubernetes_api_errors",
    "Kubernetes API calls that failed (an error status or an unreachable server), by verb.",
    ["verb"],
)
WATCH_RESTARTS = Counter(
    "apollo_watch_restarts",
    "Watches started again after they expired or broke, by who watches.",
    ["watcher"],
)
LIVE_TAILS = Gauge("apollo_live_tails_open", "LiveTail log websockets open in this process.")
SHELLS = Gauge("apollo_shells_open", "Web shell websockets open in this process.")

_VERB_PREFIXES = (
    ("list_", "list"),
    ("read_", "get"),
    ("create_", "create"),
    ("patch_", "patch"),
    ("replace_", "update"),
    ("delete_", "delete"),
    ("connect_", "connect"),
)


def kube_verb(function_name: str) -> str:
    """The verb of a kubernetes client method (read_namespaced_pod -> get)."""
    for prefix, verb in _VERB_PREFIXES:
        if function_name.startswith(prefix):
            return verb
    return "other"


def count_kube_call(function: object, *, watch: bool = False) -> str:
    """Count one call to the API server (environments/kube); its verb, to count an error."""
    verb = "watch" if watch else kube_verb(str(getattr(function, "__name__", "")))
    KUBE_CALLS.labels(verb).inc()
    return verb


class DatabaseCollector(Collector):
    """Deployments by status and environment, the queue and the leases, read at scrape time
    with two grouped queries (no per-row work)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from deployments.models import Deployment
        from deployments.status import Status

        by_status = GaugeMetricFamily(
            "apollo_deployments",
            "Deployments by status and environment.",
            labels=["status", "environment"],
        )
        rows = Deployment.objects.values_list("status", "environment__name").annotate(n=Count("pk"))
        for status, environment, count in rows.order_by():
            by_status.add_metric([status, environment], count)
        yield by_status
        now = timezone.now()
        queue = Deployment.objects.aggregate(
            pending=Count("pk", filter=Q(status=Status.PENDING)),
            oldest=Min("created_at", filter=Q(status=Status.PENDING)),
            leases=Count("pk", filter=Q(lease_expires_at__gt=now)),
        )
        yield GaugeMetricFamily(
            "apollo_queue_depth", "Deployments waiting for a worker.", value=queue["pending"]
        )
        oldest: datetime | None = queue["oldest"]
        age = (now - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "apollo_queue_oldest_pending_seconds",
            "Age of the oldest deployment waiting for a worker (0 when none waits).",
            value=age,
        )
        yield GaugeMetricFamily(
            "apollo_worker_leases_held",
            "Deployments a worker holds an unexpired lease on.",
            value=queue["leases"],
        )


# Served by /metrics beside the process's default registry (see the module docstring).
DATABASE_REGISTRY = CollectorRegistry(auto_describe=False)
DATABASE_REGISTRY.register(DatabaseCollector())
