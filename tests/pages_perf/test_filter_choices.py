"""The history filters offer only what the reader may view, also now that a reader who may view
whole environments gets the lists without the ids spelled out in the query."""

import pytest

from history.forms import HistoryFilterForm
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories

pytestmark = pytest.mark.django_db


def _offered(form: HistoryFilterForm, field: str) -> list[str]:
    return [str(value) for value, _ in form.fields[field].widget.choices if value]


def test_a_reader_of_one_whole_environment_is_offered_every_service_and_that_environment() -> None:
    # A reader of their own: the personas' grants cover whole availabilities.
    reader = factories.make_user("reader")
    checkout, catalog = factories.make_service("checkout"), factories.make_service("catalog")
    staging, prod = factories.make_environment("staging"), factories.make_environment("prod")
    grant(actor=None, verbs=[Verb.VIEW], user=reader, environment=staging)
    form = HistoryFilterForm({"environment": prod.name}, user=reader)
    assert _offered(form, "service") == sorted([checkout.name, catalog.name])
    assert _offered(form, "environment") == [staging.name]
    assert not form.is_valid()
    assert "environment" in form.errors


def test_a_reader_of_one_service_in_one_environment_is_offered_only_those() -> None:
    reader = factories.make_user("reader")
    checkout, catalog = factories.make_service("checkout"), factories.make_service("catalog")
    staging = factories.make_environment("staging")
    factories.make_environment("prod")
    grant(actor=None, verbs=[Verb.VIEW], user=reader, service=checkout, environment=staging)
    form = HistoryFilterForm({"service": catalog.name}, user=reader)
    assert _offered(form, "service") == [checkout.name]
    assert _offered(form, "environment") == [staging.name]
    assert not form.is_valid()
    assert "service" in form.errors
