"""Groups in a real browser: alice deploys a new version to two of three groups, follows both on
the batch page, and the environment page shows those two on the new sha, the third on the old."""

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from deployments.models import Deployment, Group
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.browser.conftest import log_in
from tests.kubeenv import wait_until_terminal
from tests.live import LiveServer

pytestmark = pytest.mark.browser
LIVE_TIMEOUT = 40_000  # ms: a rollout on kubesim plus the page catching up


def test_alice_deploys_to_two_of_three_groups_and_the_environment_page_shows_who_runs_what(
    live_apollo: LiveServer, page: Page, alice: User, staging: Environment, worker: object
) -> None:
    from deployments.services.deploy import request_deployment

    service = factories.make_service("ingest", deployed_per_group=True)
    groups = {
        name: Group.objects.create(
            service=service, environment=staging, name=name, scaling_factor=1
        )
        for name in ("eu", "us", "apac")
    }
    old = factories.make_version(service, commit_message="Old ingest", branch="main")
    for group in groups.values():
        outcome = request_deployment(
            user=alice, service=service, environment=staging, version=old, group=group
        )
        assert outcome.deployment is not None, outcome.reason
        assert wait_until_terminal(outcome.deployment).status == Status.DONE
    new = factories.make_version(service, commit_message="Faster ingest", branch="main")

    log_in(page, live_apollo, "alice")
    page.goto(live_apollo.url + "/deploy/")
    page.locator("#environment-choices").get_by_label("staging", exact=True).check()
    page.locator("#service-choices").get_by_label("ingest", exact=True).check()
    radio = page.locator(f"input[name=version][value='{new.git_commit_sha}']")
    expect(radio).to_be_visible()
    radio.check()
    for name in ("eu", "us"):
        page.get_by_label(f"ingest / staging / {name}", exact=True).check()
    expect(page.get_by_label("ingest / staging / apac", exact=True)).not_to_be_checked()
    polled: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if r.url.endswith("/status/") else None)
    # Several deployments: the user lands on the batch page that follows them all.
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.get_by_role("heading", name="Deployments of one request")).to_be_visible()
    for name in ("eu", "us"):
        row = page.locator(f'tr[data-group="{name}"]')
        expect(row.locator(".batch-status .badge")).to_have_text("Done", timeout=LIVE_TIMEOUT)
    expect(page.locator('tr[data-group="apac"]')).to_have_count(0)
    assert polled == []  # the rows came over the batch's websocket, not by polling

    page.goto(f"{live_apollo.url}/environments/{staging.name}/")
    for name, version in (("eu", new), ("us", new), ("apac", old)):
        article = page.locator(f'article[data-service="ingest/{name}"]')
        expect(article.locator(".version")).to_contain_text(
            version.git_commit_sha[:12], timeout=LIVE_TIMEOUT
        )
    assert set(Deployment.objects.filter(version=new).values_list("group_key", flat=True)) == {
        "eu",
        "us",
    }
