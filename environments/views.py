from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from deployments.models import Deployment
from environments.models import Environment

LATEST_DEPLOYMENTS = 20


@login_required
def home(request: HttpRequest) -> HttpResponse:
    environments = Environment.objects.select_related("cluster").order_by("availability", "name")
    latest = Deployment.objects.with_related()[:LATEST_DEPLOYMENTS]
    return render(
        request, "environments/home.html", {"environments": environments, "latest": latest}
    )


@login_required
def environment_list(request: HttpRequest) -> HttpResponse:
    environments = Environment.objects.select_related("cluster").order_by("availability", "name")
    return render(request, "environments/list.html", {"environments": environments})
