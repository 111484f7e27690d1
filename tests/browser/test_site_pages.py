"""The site around the Deploy form in Chromium: every main page at 390 px without sideways
scrolling and Log out on screen, no serious accessibility violation (axe-core, injected by the
test only), the styled error pages, and a pod that never started explained in LiveTail."""

import re
import threading
import uuid

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from deployments.models import Deployment
from deployments.status import Status
from environments import kube
from environments.models import Environment
from history.services import record_event
from kubesim.testing import KubesimHandle
from tests import factories
from tests.browser.conftest import log_in
from tests.browser.page_checks import PHONE, serious_violations, wider_than_the_screen
from tests.kubeenv import deploy, wait_until_terminal
from tests.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def site(
    live_apollo: LiveServer, worker: threading.Event, alice: User, staging: Environment
) -> tuple[LiveServer, Deployment]:
    """Apollo with a service running in staging (deployed by alice through the worker)."""
    service = factories.make_service("web", default_variables={"replicas": 1})
    version = factories.make_version(service, commit_message="Add the basket", branch="main")
    outcome = deploy(alice, service, staging, version, message="first")
    assert outcome.deployment is not None
    return live_apollo, wait_until_terminal(outcome.deployment)


def _main_pages(deployment: Deployment) -> list[str]:
    env = deployment.environment.name
    return [
        "/",
        "/environments/",
        f"/environments/{env}/",
        "/status/",
        "/deploy/",
        "/history/",
        "/history/?kind=events",
        f"/deployments/{deployment.pk}/",
        f"/services/{deployment.service.name}/",
        f"/environments/{env}/logs/?service={deployment.service.name}",
        f"/deployments/diff/?a={deployment.pk}&b={deployment.pk}",
        "/no/such/page/",
    ] + ([f"/deployments/batch/{deployment.batch}/"] if deployment.batch else [])


def test_every_main_page_fits_390_px_and_log_out_stays_on_screen(
    browser: Browser, site: tuple[LiveServer, Deployment]
) -> None:
    live, deployment = site
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(live.url + "/login/")
        assert wider_than_the_screen(page) == [], "/login/"
        log_in(page, live, "alice")
        environment = deployment.environment
        items, _ = kube.list_objects(
            environment.cluster,
            "Pod",
            environment.namespace,
            label_selector="apollo.io/service=web",
        )
        pods = [i["metadata"]["name"] for i in items if not i["metadata"].get("deletionTimestamp")]
        shell = f"/environments/{environment.name}/pods/{pods[0]}/shell/"
        for path in [*_main_pages(deployment), shell]:
            page.goto(live.url + path)
            page.wait_for_load_state("networkidle")
            assert wider_than_the_screen(page) == [], path
            logout = page.get_by_role("button", name="Log out")
            box = logout.bounding_box()
            assert box is not None, path
            assert box["x"] >= 0, path
            assert box["x"] + box["width"] <= PHONE["width"], path
    finally:
        context.close()


def test_the_main_pages_have_no_serious_accessibility_violation(
    browser: Browser, site: tuple[LiveServer, Deployment]
) -> None:
    live, deployment = site
    # axe is injected as a script of the page: only this test's context lets it past the
    # Content Security Policy (every other browser test checks that policy).
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    found = {}
    try:
        log_in(page, live, "alice")
        for path in _main_pages(deployment):
            page.goto(live.url + path)
            page.wait_for_load_state("networkidle")
            violations = serious_violations(page)
            if violations:
                found[path] = violations
    finally:
        context.close()
    assert found == {}


def test_a_refusal_is_a_styled_page_naming_the_verb(
    page: Page, live_apollo: LiveServer, alice: User, bob: User, staging: Environment
) -> None:
    factories.make_service("web")
    production = factories.make_environment("prod-x", availability="production")
    log_in(page, live_apollo, "bob")
    page.goto(f"{live_apollo.url}/environments/{production.name}/logs/?service=web")
    expect(page.locator("#error-page h1")).to_have_text("You may not do this")
    expect(page.locator("#error-page")).to_contain_text("bob may not view logs of web in prod-x")
    expect(page.locator("#error-page")).to_contain_text("Ask an Apollo administrator (alice)")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.goto(f"{live_apollo.url}/nowhere/")
    expect(page.locator("#error-page h1")).to_have_text("Nothing here")


def test_livetail_of_a_pod_whose_image_is_missing_says_why(
    page: Page,
    live_apollo: LiveServer,
    worker: threading.Event,
    alice: User,
    staging: Environment,
    kubesim: KubesimHandle,
) -> None:
    service = factories.make_service("ghost", default_variables={"replicas": 1})
    version = factories.make_version(service)
    kubesim.mark_image_missing(version.image)
    outcome = deploy(alice, service, staging, version)
    assert outcome.deployment is not None
    wait_until_terminal(outcome.deployment)
    items, _ = kube.list_objects(
        staging.cluster, "Pod", staging.namespace, label_selector="apollo.io/service=ghost"
    )
    assert items, "the failed rollout's pod is kept (nothing ran before to roll back to)"
    pod = items[0]["metadata"]["name"]
    log_in(page, live_apollo, "alice")
    page.goto(f"{live_apollo.url}/environments/{staging.name}/logs/?pod={pod}")
    expect(page.locator("#tail-notice")).to_contain_text("its image cannot be pulled")
    expect(page.locator("#tail-status")).to_contain_text("no log lines yet")


def test_the_deployment_page_sums_up_its_phases(
    page: Page, site: tuple[LiveServer, Deployment], bob: User
) -> None:
    live, deployment = site
    log_in(page, live, "bob")
    page.goto(f"{live.url}/deployments/{deployment.pk}/")
    phases = page.locator("#phases")
    expect(phases.locator(".phase-status")).to_have_text("Done")
    expect(phases).to_contain_text("took")
    expect(phases.locator('[data-phase="rolling-out"]')).to_contain_text("1 of 1 pods ready")
    expect(phases.locator('[data-phase="verdict"]')).to_have_class(re.compile("phase-done"))
    expect(page.locator("#progress")).to_have_attribute("value", "100")


def test_history_offers_every_kind_of_action_and_searches_users(
    page: Page, site: tuple[LiveServer, Deployment], bob: User
) -> None:
    live, deployment = site
    record_event(
        actor=bob,
        action="pod.restarted",
        target=deployment.environment,
        service=deployment.service,
        summary="Restarted pod web-1",
    )
    log_in(page, live, "alice")
    page.goto(f"{live.url}/history/")
    page.get_by_role("link", name="Restarts").click()
    expect(page.locator("#events")).to_contain_text("Restarted pod web-1")
    page.goto(f"{live.url}/history/?q=Add+the+basket")
    expect(page.locator("table.deployments tbody tr")).to_have_count(1)


def test_cancel_all_shows_only_to_who_may_cancel(
    page: Page, live_apollo: LiveServer, alice: User, bob: User, carol: User, staging: Environment
) -> None:
    batch = uuid.uuid4()
    for name in ("web", "api"):
        service = factories.make_service(name)
        factories.make_deployment(
            service=service,
            environment=staging,
            deployed_by=alice,
            source_version=factories.make_version(service),
            status=Status.STARTED,
            batch=batch,
        )
    log_in(page, live_apollo, "carol")
    page.goto(f"{live_apollo.url}/deployments/batch/{batch}/")
    expect(page.locator("#batch tbody tr")).to_have_count(2)
    expect(page.get_by_role("button", name="Cancel all")).to_be_hidden()
    expect(page.get_by_role("button", name="Revert all")).to_be_hidden()
    expect(page.get_by_role("link", name="Deploy", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Log out").click()
    log_in(page, live_apollo, "bob")
    page.goto(f"{live_apollo.url}/deployments/batch/{batch}/")
    expect(page.get_by_role("button", name="Cancel all")).to_be_visible()
