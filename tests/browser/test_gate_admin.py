"""The gate in a real browser: alice manages grants and blockers in the Django admin."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from permissions.blockers import evaluate
from permissions.services import explain, grant
from permissions.verbs import Verb
from tests import factories
from tests.live import LiveServer

pytestmark = pytest.mark.browser
FRIDAY_13_BERLIN = datetime(2025, 6, 6, 11, 0, tzinfo=UTC)


def _log_in_to_the_admin(page: Page, live: LiveServer, next_path: str) -> None:
    page.goto(f"{live.url}/admin/login/?next={next_path}")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_alice_creates_a_deny_grant_and_a_time_window_blocker_and_explain_reports_both(
    live_apollo: LiveServer, page: Page, alice: User, bob: User
) -> None:
    checkout = factories.make_service("checkout")
    production = factories.make_environment("production", availability="production")
    grant(actor=alice, user=bob, verbs=[Verb.DEPLOY], service=checkout)  # the DENY must beat it

    _log_in_to_the_admin(page, live_apollo, "/admin/permissions/grant/add/")
    page.get_by_label("User:").select_option(label="bob")
    page.get_by_label("deploy", exact=True).check()
    page.get_by_label("Effect:").select_option("DENY")
    page.get_by_label("Environment:").select_option(label="production")
    page.get_by_label("Note:").fill("no production deploys for bob")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator("#result_list")).to_contain_text("environment production")

    page.goto(f"{live_apollo.url}/admin/permissions/blocker/add/")
    page.get_by_label("Name:").fill("Friday freeze")
    page.get_by_label("Kind:").select_option(label="time window")
    page.get_by_label("Availability:").fill("production")
    page.get_by_label("Friday").check()
    page.get_by_label("Start:").fill("12:00")
    page.get_by_label("End:").fill("23:59")
    page.get_by_label("Timezone:").fill("Europe/Berlin")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    decision = explain(bob, Verb.DEPLOY, service=checkout, environment=production)
    assert not decision.allowed
    assert decision.reason == (
        "bob may not deploy checkout in production: DENY on environment production to user bob"
    )
    refusals = evaluate(
        user=bob,
        service=checkout,
        environment=production,
        version=factories.make_version(checkout, branch="main"),
        now=FRIDAY_13_BERLIN,
    )
    assert [r.reason for r in refusals] == [
        "Blocked by 'Friday freeze' (time window): deployments to production are blocked on "
        "Fridays 12:00\N{EN DASH}23:59 Europe/Berlin"
    ]

    page.goto(f"{live_apollo.url}/admin/permissions/grant/matrix/?verb=deploy")
    bob_row = page.get_by_role("row").filter(has_text="user bob")
    expect(bob_row.get_by_role("cell").nth(1)).to_have_text("✗ DENY")
    expect(bob_row.get_by_role("cell").nth(1)).to_have_attribute("title", decision.reason)


def test_the_blocker_form_shows_the_kinds_settings_and_why_a_configuration_is_refused(
    live_apollo: LiveServer, page: Page, alice: User
) -> None:
    _log_in_to_the_admin(page, live_apollo, "/admin/permissions/blocker/add/")
    page.get_by_label("Name:").fill("Broken window")
    page.get_by_label("Kind:").select_option(label="branch allow-list")
    expect(page.get_by_label("Patterns:")).to_be_visible()
    expect(page.get_by_label("Start:")).to_be_hidden()
    page.get_by_label("Kind:").select_option(label="time window")
    expect(page.get_by_label("Patterns:")).to_be_hidden()
    page.get_by_label("Friday").check()
    page.get_by_label("Start:").fill("12:00")
    page.get_by_label("End:").fill("13:00")
    page.get_by_label("Timezone:").fill("Mars/Base")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errornote, .errorlist").first).to_be_visible()
    expect(page.locator("ul.errorlist.nonfield")).to_contain_text("unknown time zone 'Mars/Base'")
