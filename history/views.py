from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime

from deployments.models import Deployment

PAGE_SIZE = 50


def _cursor(raw: str) -> tuple[datetime, int] | None:
    """Parse an ``<iso created_at>_<id>`` keyset cursor; a malformed one starts over."""
    stamp, _, pk = raw.rpartition("_")
    when = parse_datetime(stamp) if stamp else None
    if when is None or not pk.isdigit():
        return None
    return when, int(pk)


@login_required
def history_list(request: HttpRequest) -> HttpResponse:
    deployments = Deployment.objects.with_related()
    cursor = _cursor(request.GET.get("after", ""))
    if cursor is not None:
        when, pk = cursor
        # Keyset pagination on (created_at, id), served by deployment_recent_idx: the cost of
        # a page does not grow with how deep the reader has paged.
        deployments = deployments.filter(created_at__lte=when).exclude(created_at=when, id__gte=pk)
    page = list(deployments[: PAGE_SIZE + 1])
    next_cursor = ""
    if len(page) > PAGE_SIZE:
        page = page[:PAGE_SIZE]
        last = page[-1]
        next_cursor = f"{last.created_at.isoformat()}_{last.pk}"
    return render(request, "history/list.html", {"deployments": page, "next_cursor": next_cursor})
