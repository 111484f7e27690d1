"""The status board in Chromium: what runs in each environment, kept live over the status
socket, filtered, and one click from the service on its environment's page."""

import re
import threading

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from environments.models import Environment
from tests import factories
from tests.browser.conftest import log_in
from tests.kubeenv import deploy, wait_until_terminal
from tests.live import LiveServer

pytestmark = pytest.mark.browser

LIVE_TIMEOUT = 30_000


def test_alice_follows_the_board_live_and_clicks_through_to_the_service(
    live_apollo: LiveServer, worker: threading.Event, page: Page, alice: User, staging: Environment
) -> None:
    web = factories.make_service("web", default_variables={"replicas": 1})
    version = factories.make_version(web, commit_message="Add the basket", commit_author="dora")
    outcome = deploy(alice, web, staging, version)
    assert outcome.deployment is not None
    wait_until_terminal(outcome.deployment)
    factories.make_service("search")  # never deployed: its cells say so
    log_in(page, live_apollo, "alice")
    page.goto(live_apollo.url + "/status/")
    cell = page.locator(f'td.cell[data-env="{staging.name}"][data-key="web"]')
    expect(cell.locator(".sha")).to_have_text(version.git_commit_sha[:8])
    expect(cell).to_contain_text("Add the basket · dora")
    expect(page.locator(f'td.cell[data-env="{staging.name}"][data-key="search"]')).to_contain_text(
        "not deployed"
    )
    # The environment's watch reports the pods over the socket: the cell turns healthy.
    expect(page.locator("#board-connection")).to_contain_text(
        f"Live: {staging.name}", timeout=LIVE_TIMEOUT
    )
    expect(cell.locator(".badge.health")).to_have_text("healthy 1/1", timeout=LIVE_TIMEOUT)

    page.get_by_role("searchbox", name="Service").fill("search")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator('tr[data-key="web"]')).to_have_count(0)
    expect(page.locator('tr[data-key="search"]')).to_have_count(1)

    page.goto(live_apollo.url + "/status/")
    page.get_by_role("link", name=f"web in {staging.name}").click()
    expect(page).to_have_url(re.compile(rf"/environments/{staging.name}/#service-web$"))
    expect(page.locator("#service-web")).to_be_visible(timeout=LIVE_TIMEOUT)


def test_mallory_sees_an_empty_board(
    live_apollo: LiveServer, page: Page, alice: User, mallory: User, staging: Environment
) -> None:
    factories.make_service("web")
    log_in(page, live_apollo, "mallory")
    page.goto(live_apollo.url + "/status/")
    expect(page.locator("#board")).to_contain_text("Nothing to show")
    expect(page.locator("#board")).not_to_contain_text("web")
