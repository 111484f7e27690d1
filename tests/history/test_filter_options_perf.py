"""The filter form's options come from markup kept per process for the names read: never stale
(a service added or an environment renamed shows on the next page), the chosen one marked."""

import pytest
from django.contrib.auth.models import User

from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def test_a_service_added_or_an_environment_renamed_shows_on_the_next_page(alice: User) -> None:
    factories.make_service("checkout")
    production = factories.make_environment("prod")
    client = login(alice)
    assert '<option value="prod">prod</option>' in client.get("/history/").content.decode()

    factories.make_service("basket")
    Environment.objects.filter(pk=production.pk).update(name="live")
    html = client.get("/history/").content.decode()

    assert '<option value="basket">basket</option>' in html
    assert '<option value="checkout">checkout</option>' in html
    assert '<option value="live">live</option>' in html
    assert 'value="prod"' not in html


def test_the_chosen_option_is_marked_only_on_the_page_that_chose_it(alice: User) -> None:
    factories.make_service("checkout")
    factories.make_service("catalog")
    client = login(alice)

    chosen = client.get("/history/?service=checkout").content.decode()
    plain = client.get("/history/").content.decode()

    assert '<option value="checkout" selected>checkout</option>' in chosen
    assert '<option value="catalog">catalog</option>' in chosen
    assert '<option value="checkout">checkout</option>' in plain
    assert '<select name="service" id="id_service"><option value="" selected>any' in plain
