"""The history filter form's selects, built in Python: same options, the choice kept, escaped."""

import pytest
from django.contrib.auth.models import User

from history.forms import HistoryFilterForm
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_selects_list_every_choice_and_keep_the_chosen_one(alice: User) -> None:
    factories.make_service("checkout")
    factories.make_service("catalog")
    factories.make_environment("prod")
    html = str(HistoryFilterForm({"service": "checkout", "status": "FAILED"}, user=alice))
    assert '<select name="service" id="id_service">' in html
    # The service select has a choice; the environment select keeps "any".
    assert '<select name="service" id="id_service"><option value="">any</option>' in html
    assert '<select name="environment" id="id_environment"><option value="" selected>any' in html
    assert '<option value="catalog">catalog</option>' in html
    assert '<option value="checkout" selected>checkout</option>' in html
    assert '<option value="prod">prod</option>' in html
    assert '<option value="FAILED" selected>Failed</option>' in html
    assert html.count(" selected>") == 4  # with "Show: deployments"


def test_choice_labels_and_values_are_escaped(alice: User) -> None:
    factories.make_environment("x", namespace="x")
    form = HistoryFilterForm(user=alice)
    form.fields["status"].choices = [("<b>", "<i>bold</i>")]  # type: ignore[attr-defined]
    html = str(form["status"])
    assert '<option value="&lt;b&gt;">&lt;i&gt;bold&lt;/i&gt;</option>' in html
    assert "<i>" not in html
