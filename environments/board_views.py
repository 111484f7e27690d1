"""The status board page (environments.board): environments x services, filtered by service,
environment and group, each cell one click from the service on its environment's page."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from environments.board import BoardChoices, BoardFilters, filter_choices, status_board
from history.forms import QuickSelect
from permissions.selectors import visibility


class BoardFilterForm(forms.Form):
    """Names only among what the user may view: anything else is a form error, not a 404 that
    would tell a hidden name from a missing one."""

    # A search box, not a list: a thousand services would be a thousand <option>s to render on
    # every page (most of the board's time at 1,000 services).
    service = forms.CharField(
        required=False, max_length=200, widget=forms.TextInput(attrs={"type": "search"})
    )
    # History's <select> built in Python: Django's Select renders a template per option (the
    # form and its fields took 1.14 ms CPU a board at 20 environments, 0.35 with these).
    environment = forms.ChoiceField(required=False, widget=QuickSelect)
    group = forms.ChoiceField(required=False, widget=QuickSelect)
    # The next-page link's cursor (a service name), not a filter the form shows.
    after = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def __init__(self, *args: object, names: BoardChoices) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.names = names
        for field, values in (("environment", names.environments), ("group", names.groups)):
            choice: forms.ChoiceField = self.fields[field]  # type: ignore[assignment]
            choice.choices = [("", "all"), *((v, v) for v in values)]

    def clean_service(self) -> str:
        name = str(self.cleaned_data["service"]).strip()
        # SECURITY: the same answer for a service that does not exist and one the user may not
        # view.
        if name and not self.names.has_service(name):
            raise forms.ValidationError(f"No service you may view is called '{name}'.")
        return name


@login_required
@require_GET
def board(request: HttpRequest) -> HttpResponse:
    seen = visibility(request.user)
    choices = filter_choices(seen)
    form = BoardFilterForm(request.GET, names=choices)
    filters = BoardFilters()
    status = 200
    if form.is_valid():
        filters = BoardFilters(**{k: str(v) for k, v in form.cleaned_data.items()})
    else:
        status = 400
    result = status_board(request.user, filters, seen, choices) if status == 200 else None
    # The next page keeps every filter and replaces only the cursor.
    params = request.GET.copy()
    params.pop("after", None)
    first_query = params.urlencode()
    if result is not None and result.next_after:
        params["after"] = result.next_after
    context = {
        "form": form,
        "board": result,
        "first_query": first_query,
        "next_query": params.urlencode(),
    }
    return render(request, "environments/board.html", context, status=status)
