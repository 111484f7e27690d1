"""The Metrics page: the four DORA figures for a service, an environment or the whole team."""

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from history.metrics import charts
from history.metrics.forms import MetricsForm
from history.metrics.selectors import metrics_for


def _choices(form: MetricsForm) -> dict[str, list[str]]:
    """The names the two selects offer (what the user may view)."""
    return {
        name: list(form.choice_queryset(name).values_list("name", flat=True))
        for name in ("service", "environment")
    }


@login_required
@require_GET
def metrics_page(request: HttpRequest) -> HttpResponse:
    form = MetricsForm(request.GET, user=request.user)
    if not form.is_valid():
        invalid = {"form": form, "metrics": None, "choices": _choices(form)}
        return render(request, "metrics/page.html", invalid, status=400)
    metrics = metrics_for(form.seen, form.cleaned_data)
    query = {
        key: request.GET[key]
        for key in ("service", "environment", "start", "end")
        if request.GET.get(key)
    }
    export = reverse("api:metrics") + "?" + urlencode(query)
    context: dict[str, Any] = {
        "form": form,
        "choices": _choices(form),
        "metrics": metrics,
        "daily_chart": charts.daily_deployments(metrics.days),
        "lead_chart": charts.lead_time_histogram(metrics.lead_buckets),
        "texts": {
            "lead_median": charts.human(metrics.lead_time_median),
            "lead_p90": charts.human(metrics.lead_time_p90),
            "restore_median": charts.human(metrics.restore_median),
        },
        "json_url": export + ("&" if query else "") + "format=json",
        "csv_url": export + ("&" if query else "") + "format=csv",
    }
    return render(request, "metrics/page.html", context)
