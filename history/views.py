from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from deployments.selectors import TableRow, history_page, parse_cursor
from history.forms import HistoryFilterForm
from history.selectors import EventView, events_page

PAGE_SIZE = 50


@login_required
@require_GET
def history_list(request: HttpRequest) -> HttpResponse:
    """Deployments (or, with ?kind=, changes and actions: services, environments, clusters,
    groups, grants, blockers, shells, restarts, scaling...), newest first, filtered, in keyset
    pages. Only what the user may view (deployments.selectors, history.selectors)."""
    # What the reader may view, decided once (by the form, after its first read) for its
    # choices and the page's rows.
    form = HistoryFilterForm(request.GET, user=request.user)
    seen = form.seen
    page: list[TableRow] = []
    events: list[EventView] | None = None
    next_cursor = ""
    if form.is_valid():
        cursor = parse_cursor(request.GET.get("after", ""))
        if form.shows_events:
            events, next_cursor = events_page(
                form.event_filters(), cursor, PAGE_SIZE, user=request.user, seen=seen
            )
        else:
            page, next_cursor = history_page(
                form.filters(), cursor, PAGE_SIZE, user=request.user, seen=seen, names=form.names
            )
    # The next-page link keeps every filter and replaces only the cursor.
    params = request.GET.copy()
    params.pop("after", None)
    if next_cursor:
        params["after"] = next_cursor
    context = {
        "form": form,
        "deployments": page,
        "events": events,
        "next_cursor": next_cursor,
        "next_query": params.urlencode(),
    }
    return render(request, "history/list.html", context)
