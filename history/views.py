from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from deployments.models import Deployment
from deployments.selectors import history_page, parse_cursor
from history.forms import HistoryFilterForm

PAGE_SIZE = 50


@login_required
@require_GET
def history_list(request: HttpRequest) -> HttpResponse:
    """Every deployment, newest first, filtered, in keyset pages (see selectors.history_page)."""
    form = HistoryFilterForm(request.GET, user=request.user)
    page: list[Deployment] = []
    next_cursor = ""
    if form.is_valid():
        cursor = parse_cursor(request.GET.get("after", ""))
        page, next_cursor = history_page(form.filters(), cursor, PAGE_SIZE, user=request.user)
    # The next-page link keeps every filter and replaces only the cursor.
    params = request.GET.copy()
    params.pop("after", None)
    if next_cursor:
        params["after"] = next_cursor
    context = {
        "form": form,
        "deployments": page,
        "next_cursor": next_cursor,
        "next_query": params.urlencode(),
    }
    return render(request, "history/list.html", context)
