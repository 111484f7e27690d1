from typing import Any

from django.contrib.auth.models import AnonymousUser, User

from deployments.selectors import visible_deployments
from history.metrics.compute import Metrics, compute


def metrics_for(user: User | AnonymousUser, cleaned: dict[str, Any]) -> Metrics:
    """The figures of what `user` may view, in the scope and period of a valid MetricsForm."""
    rows = visible_deployments(user)
    if cleaned.get("service") is not None:
        rows = rows.filter(service=cleaned["service"])
    if cleaned.get("environment") is not None:
        rows = rows.filter(environment=cleaned["environment"])
    return compute(rows, cleaned["period"])
