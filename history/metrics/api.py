"""GET /api/v1/metrics/?service=&environment=&start=&end=&format=json|csv

The figures of the Metrics page for what the caller may view (history.metrics.compute): JSON
(the figures, their bands and the deployments per day) or CSV (one line per figure: metric,
value, unit, band). Same authentication as the rest of the API (an API token or the session).
"""

import csv
import io
from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from deployments.api.common import ApolloAPIView
from history.metrics.forms import MetricsForm
from history.metrics.selectors import metrics_for

FIGURES = [
    ("deployments", "deployments", "count", None),
    ("done", "done", "count", None),
    ("failures", "failures", "count", None),
    (
        "deployment_frequency",
        "deployment_frequency_per_day",
        "per day",
        "deployment_frequency_band",
    ),
    ("lead_time_median", "lead_time_median_seconds", "seconds", "lead_time_band"),
    ("lead_time_p90", "lead_time_p90_seconds", "seconds", None),
    ("change_failure_rate", "change_failure_rate", "ratio", "change_failure_rate_band"),
    (
        "time_to_restore_median",
        "time_to_restore_median_seconds",
        "seconds",
        "time_to_restore_band",
    ),
    ("unrestored_failures", "unrestored_failures", "count", None),
]


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if isinstance(data, dict) and "deployment_frequency_band" in data:
            writer.writerow(["metric", "value", "unit", "band"])
            writer.writerow(["period", f"{data['start']}..{data['end']}", "dates", ""])
            for name, key, unit, band in FIGURES:
                value = data.get(key)
                writer.writerow(
                    [name, "" if value is None else value, unit, data.get(band or "", "")]
                )
        else:  # an error: its fields and messages
            writer.writerow(["error", "message"])
            for field, messages in (data or {}).items():
                for message in messages if isinstance(messages, list) else [messages]:
                    writer.writerow([field, str(message)])
        return out.getvalue().encode()


class MetricsView(ApolloAPIView):
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("service", str, description="a service's name; empty: all"),
            OpenApiParameter("environment", str, description="an environment's name; empty: all"),
            OpenApiParameter("start", OpenApiTypes.DATE, description="default: 30 days ago"),
            OpenApiParameter("end", OpenApiTypes.DATE, description="inclusive; default: today"),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        form = MetricsForm(request.query_params, user=request.user)
        if not form.is_valid():
            errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
            return Response(errors, status=400)
        return Response(metrics_for(form.seen, form.cleaned_data).as_dict())
