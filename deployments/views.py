from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from deployments.models import Deployment


@login_required
def deployment_detail(request: HttpRequest, deployment_id: int) -> HttpResponse:
    deployment = get_object_or_404(
        Deployment.objects.with_related(),
        pk=deployment_id,
    )
    return render(request, "deployments/detail.html", {"deployment": deployment})
