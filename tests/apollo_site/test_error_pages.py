"""The 403, 404 and 500 pages: in the site's layout, saying what happened and what to do, and
never Django's list of URL patterns (even with DEBUG on)."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apollo_site import errors
from deployments.models import Service
from environments.models import Environment
from tests.conftest import login

pytestmark = pytest.mark.django_db


def test_a_refusal_names_the_verb_the_target_and_whom_to_ask(
    alice: User, bob: User, checkout: Service, production: Environment
) -> None:
    response = login(bob).get(f"/environments/{production.name}/logs/?service={checkout.name}")
    assert response.status_code == 403
    page = response.content.decode()
    assert 'class="topbar"' in page  # the site's layout, with its navigation
    assert "bob may not view logs of checkout in production" in page
    assert "Ask an Apollo administrator (alice)" in page
    assert "<code>view_logs</code>" in page


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_address_gets_the_sites_404_without_the_url_list(
    settings: Any, bob: User, debug: bool
) -> None:
    settings.DEBUG = debug
    response = login(bob).get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert 'class="topbar"' in page
    assert "There is no page at this address" in page
    assert "Using the URLconf" not in page
    assert "api/v1/" not in page


@pytest.mark.parametrize("debug", [False, True])
def test_an_object_the_user_may_not_view_is_the_same_404(
    settings: Any, mallory: User, production: Environment, debug: bool
) -> None:
    settings.DEBUG = debug
    response = login(mallory).get(f"/environments/{production.name}/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Nothing here" in page
    assert "the <code>view</code> permission" in page
    assert "Traceback" not in page
    assert "Raised by" not in page


def test_the_slash_is_still_appended_with_debug_on(settings: Any, bob: User) -> None:
    settings.DEBUG = True
    response = login(bob).get("/environments")
    assert response.status_code == 301
    assert response["Location"] == "/environments/"


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_address_answers_json(settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    response = Client().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_the_500_page_says_what_to_do_without_touching_the_database(rf: Any) -> None:
    request = rf.get("/deploy/")
    request.request_id = "abc123"
    response = errors.server_error(request)
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something broke on our side" in page
    assert "abc123" in page
    assert 'class="topbar"' in page
