import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from tests import factories
from tests.live import LiveServer

pytestmark = pytest.mark.browser


def test_bob_logs_in_through_the_form_and_sees_the_home_page(
    live_apollo: LiveServer, page: Page, bob: User
) -> None:
    factories.make_environment("qa-east", namespace="qa-apps")
    page.goto(live_apollo.url + "/")
    expect(page).to_have_url(live_apollo.url + "/login/?next=/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Environments")).to_be_visible()
    expect(page.get_by_role("cell", name="qa-east", exact=True)).to_be_visible()
    expect(page.locator(".who")).to_have_text("bob")


def test_a_wrong_password_shows_an_error_and_stays_on_the_login_page(
    live_apollo: LiveServer, page: Page, bob: User
) -> None:
    page.goto(live_apollo.url + "/login/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("did not match")
    expect(page.get_by_role("heading", name="Log in to Apollo")).to_be_visible()
