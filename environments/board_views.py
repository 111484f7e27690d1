"""The status board page (environments.board): environments x services, filtered by service,
environment and group, each cell one click from the service on its environment's page."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from environments.board import BoardFilters, filter_choices, status_board
from permissions.selectors import visibility


class BoardFilterForm(forms.Form):
    """Names only among what the user may view: anything else is a form error, not a 404 that
    would tell a hidden name from a missing one."""

    service = forms.ChoiceField(required=False)
    environment = forms.ChoiceField(required=False)
    group = forms.ChoiceField(required=False)

    def __init__(self, *args: object, names: tuple[list[str], list[str], list[str]]) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        for field, values in zip(("environment", "service", "group"), names, strict=True):
            choice: forms.ChoiceField = self.fields[field]  # type: ignore[assignment]
            choice.choices = [("", "all"), *((v, v) for v in values)]


@login_required
@require_GET
def board(request: HttpRequest) -> HttpResponse:
    seen = visibility(request.user)
    form = BoardFilterForm(request.GET, names=filter_choices(seen))
    filters = BoardFilters()
    status = 200
    if form.is_valid():
        filters = BoardFilters(**{k: str(v) for k, v in form.cleaned_data.items()})
    else:
        status = 400
    result = status_board(request.user, filters, seen) if status == 200 else None
    return render(
        request, "environments/board.html", {"form": form, "board": result}, status=status
    )
