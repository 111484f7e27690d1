"""The filter form's text and date inputs, built in Python, render what Django's own widgets
render for the same field and value: blank, filled, escaped, invalid (aria-invalid), with help
text (aria-describedby)."""

import pytest
from django import forms
from django.contrib.auth.models import User
from django.forms.widgets import Input

from history.forms import HistoryFilterForm, QuickDateInput, QuickTextInput
from tests.conftest import login

pytestmark = pytest.mark.django_db

QUERIES = [
    {},
    {"group": "blue", "user": "bob", "since": "2026-01-02", "until": "2026-03-04", "q": "fix"},
    {"group": '"><script>x</script>', "q": "a & b <i>", "user": "nobody-at-all"},
    {"since": "yesterday", "until": "2026-02-30", "group": "g" * 41},
    {"since": "2026-05-01", "until": "2026-04-01"},
]


def _djangos_own(widget: forms.Widget) -> forms.Widget:
    """The Django widget the quick one stands for, with the same attributes."""
    base = forms.DateInput if isinstance(widget, QuickDateInput) else forms.TextInput
    assert isinstance(widget, Input)
    own = base(attrs={**widget.attrs, "type": widget.input_type})
    own.is_required = widget.is_required
    return own


@pytest.mark.parametrize("data", QUERIES)
def test_each_input_renders_as_djangos_own_widget_would(alice: User, data: dict[str, str]) -> None:
    form = HistoryFilterForm(data, user=alice)
    form.is_valid()
    quick = [f for f in form if isinstance(f.field.widget, QuickTextInput | QuickDateInput)]

    assert [f.name for f in quick] == ["group", "user", "since", "until", "q"]
    for field in quick:
        assert str(field) == field.as_widget(widget=_djangos_own(field.field.widget)), field.name


def test_the_page_shows_the_values_typed_escaped_and_the_errors(mallory: User) -> None:
    html = login(mallory).get("/history/?group=%22%3E%3Cb%3E&since=nope").content.decode()

    assert '<input type="text" name="group" value="&quot;&gt;&lt;b&gt;" maxlength="40"' in html
    assert (
        '<input type="date" name="since" value="nope" aria-invalid="true" '
        'aria-describedby="id_since_error" id="id_since">'
    ) in html
    assert "<b>" not in html
    assert '<input type="text" name="q" maxlength="200" aria-describedby="id_q_helptext"' in html
