"""Issue #14 in a real browser: the Metrics page of the demo history, and an unsafe webhook URL
refused at save time on the service page."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import Page, expect

from deployments.models import Deployment
from deployments.notifications.models import Subscription
from history.metrics.compute import compute
from history.metrics.forms import default_period
from tests import factories
from tests.browser.conftest import log_in
from tests.live import LiveServer

pytestmark = pytest.mark.browser


def _demo(*, history: bool) -> None:
    call_command("seed_demo", stdout=StringIO())
    if history:
        call_command("seed_history", stdout=StringIO())
    alice = User.objects.get(username="alice")  # seed_demo gave her a new password
    alice.set_password(factories.PASSWORD)
    alice.save()


def test_alice_reads_the_demo_metrics_and_they_match_the_computation(
    live_apollo: LiveServer, page: Page
) -> None:
    _demo(history=True)
    expected = compute(Deployment.objects.all(), default_period())
    log_in(page, live_apollo, "alice")
    page.goto(f"{live_apollo.url}/")
    page.get_by_role("link", name="Metrics").click()
    expect(page.locator("h1")).to_have_text("Delivery metrics")
    expect(page.locator("#frequency .value")).to_have_text(f"{expected.per_day:.2f} a day")
    rate = round(100 * expected.failures / expected.deployments)
    expect(page.locator("#change-failure-rate .value")).to_have_text(f"{rate} %")
    expect(page.locator("#frequency .band")).to_have_text(expected.frequency_band)
    expect(page.locator("#lead-time .band")).to_have_text(expected.lead_time_band)
    expect(page.locator("#change-failure-rate .band")).to_have_text(expected.change_failure_band)
    expect(page.locator("#time-to-restore .band")).to_have_text(expected.restore_band)
    expect(page.locator("#daily-chart svg")).to_be_visible()


def test_alice_is_refused_an_unsafe_webhook_url_on_the_service_page(
    live_apollo: LiveServer, page: Page
) -> None:
    _demo(history=False)
    log_in(page, live_apollo, "alice")
    page.goto(f"{live_apollo.url}/services/checkout/")
    section = page.locator("section.notifications")
    section.get_by_text("Add notifications").click()
    section.get_by_label("Name").fill("metadata")
    section.get_by_label("URL").fill("https://169.254.169.254/latest/meta-data/")
    section.get_by_label("Secret").fill("a-long-enough-secret")
    section.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("body")).to_contain_text("This URL is refused")
    expect(page.locator("body")).to_contain_text("internal address")
    assert not Subscription.objects.exists()
