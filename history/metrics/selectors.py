from typing import Any

from django.db.models import Q

from history.metrics.compute import Metrics, compute
from permissions.selectors import Visibility


def metrics_for(seen: Visibility, cleaned: dict[str, Any]) -> Metrics:
    """The figures of what a user may view (`seen`, their visibility), in the scope and period
    of a valid MetricsForm (which holds that visibility: `form.seen`).

    SECURITY: the visibility filter is applied to the metrics' table itself (its service_id
    and environment_id columns), one condition per environment, never a check per row."""
    where = seen.q(service="service_id", environment="environment_id")
    if cleaned.get("service") is not None:
        where &= Q(service_id=cleaned["service"].pk)
    if cleaned.get("environment") is not None:
        where &= Q(environment_id=cleaned["environment"].pk)
    return compute(where, cleaned["period"])
