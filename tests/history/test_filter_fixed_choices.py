"""The kind and status choices are shared by every form rather than deep-copied: held so that
nothing changes them in place, and a form that assigns others changes only its own."""

import pytest
from django.contrib.auth.models import User

from deployments.status import Status
from history.forms import KIND_CHOICES, HistoryFilterForm

pytestmark = pytest.mark.django_db


def test_every_form_offers_the_same_kind_and_status_choices(alice: User) -> None:
    first, second = HistoryFilterForm(user=alice), HistoryFilterForm(user=alice)

    for form in (first, second):
        assert list(form.fields["kind"].choices) == KIND_CHOICES  # type: ignore[attr-defined]
        status = list(form.fields["status"].choices)  # type: ignore[attr-defined]
        assert status == [("", "any"), *Status.choices]


def test_the_shared_choices_cannot_be_changed_in_place(alice: User) -> None:
    form = HistoryFilterForm(user=alice)
    with pytest.raises(AttributeError):
        form.fields["status"].choices.append(("x", "y"))  # type: ignore[attr-defined]


def test_choices_assigned_to_one_form_leave_the_next_form_alone(alice: User) -> None:
    changed = HistoryFilterForm(user=alice)
    changed.fields["status"].choices = [("<b>", "bold")]  # type: ignore[attr-defined]

    html = str(HistoryFilterForm({"status": "FAILED"}, user=alice)["status"])

    assert '<option value="FAILED" selected>Failed</option>' in html
    assert "&lt;b&gt;" not in html
