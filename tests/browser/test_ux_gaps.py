"""Issue 13's review gaps in Chromium: readable status names (the raw code only in
data-status), action controls disabled with the reason beside them (live on the environment
page and the batch page), drift of the pod template named on the environment page; each page
without sideways scrolling at 390 px and without a serious axe-core violation."""

import threading
import uuid

import pytest
from django.contrib.auth.models import User
from kubernetes import client
from playwright.sync_api import Browser, Page, expect

from deployments.controls import NOTHING_TO_CANCEL
from deployments.models import Deployment, Service
from deployments.services.deploy import request_deployment
from deployments.status import Status
from environments import kube
from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.browser.conftest import log_in
from tests.browser.page_checks import PHONE, serious_violations, wider_than_the_screen
from tests.kubeenv import deploy, wait_until_terminal
from tests.live import LiveServer

pytestmark = pytest.mark.browser

LIVE_TIMEOUT = 30_000


def _fits_and_passes_axe(page: Page, path: str) -> None:
    page.wait_for_load_state("networkidle")
    assert wider_than_the_screen(page) == [], path
    assert serious_violations(page) == [], path


@pytest.fixture
def web(
    live_apollo: LiveServer, worker: threading.Event, alice: User, staging: Environment
) -> Deployment:
    """web running in staging, deployed by alice through the worker."""
    service = factories.make_service("web", default_variables={"replicas": 1})
    version = factories.make_version(service, commit_message="Add the basket")
    outcome = deploy(alice, service, staging, version, message="first")
    assert outcome.deployment is not None
    return wait_until_terminal(outcome.deployment)


def test_disabled_controls_say_why_at_390_px_without_accessibility_violations(
    browser: Browser,
    live_apollo: LiveServer,
    web: Deployment,
    alice: User,
    bob: User,
    staging: Environment,
) -> None:
    grant(
        actor=None,
        user=bob,
        verbs=[Verb.RESTART],
        effect=Effect.DENY,
        service=web.service,
        environment=staging,
    )
    production = factories.make_environment("production", availability="production")
    in_production = factories.make_deployment(
        service=web.service,
        environment=production,
        deployed_by=alice,
        source_version=factories.make_version(web.service),
        status=Status.DONE,
    )
    batch = uuid.uuid4()
    Deployment.objects.filter(pk=web.pk).update(batch=batch)
    # axe is injected as a script of the page: only this context lets it past the CSP.
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, live_apollo, "bob")
        page.goto(f"{live_apollo.url}/environments/{staging.name}/")
        expect(page.locator("#why-restart-web")).to_contain_text(
            "bob may not restart web in staging", timeout=LIVE_TIMEOUT
        )
        expect(page.get_by_role("button", name="Rolling restart")).to_be_disabled()
        expect(page.locator("#why-podrestart-web")).to_contain_text("bob may not restart web")
        expect(page.get_by_role("link", name="Logs of all pods")).to_be_visible()
        _fits_and_passes_axe(page, "environment page")

        page.goto(f"{live_apollo.url}/deployments/{in_production.pk}/")
        expect(page.locator("#why-roll-back")).to_contain_text(
            "bob may not deploy web in production"
        )
        expect(
            page.get_by_role("button", name="Roll back to the previous version")
        ).to_be_disabled()
        expect(page.locator("#status .badge")).to_have_text("Done")
        expect(page.locator("#status .badge")).to_have_attribute("data-status", "DONE")
        _fits_and_passes_axe(page, "deployment page")

        page.goto(f"{live_apollo.url}/deployments/batch/{batch}/")
        expect(page.locator("#why-cancel-all")).to_have_text(NOTHING_TO_CANCEL)
        expect(page.get_by_role("button", name="Cancel all")).to_be_disabled()
        expect(page.locator("#batch-summary")).to_have_text("1 done")
        _fits_and_passes_axe(page, "batch page")
    finally:
        context.close()


def test_the_batch_page_follows_to_a_readable_done_and_says_why_cancel_all_is_disabled(
    page: Page,
    live_apollo: LiveServer,
    worker: threading.Event,
    alice: User,
    bob: User,
    staging: Environment,
) -> None:
    service: Service = factories.make_service("api", default_variables={"replicas": 1})
    version = factories.make_version(service)
    batch = uuid.uuid4()
    outcome = request_deployment(
        user=alice, service=service, environment=staging, version=version, batch=batch
    )
    assert outcome.deployment is not None
    log_in(page, live_apollo, "bob")
    page.goto(f"{live_apollo.url}/deployments/batch/{batch}/")
    badge = page.locator(f'tr[data-deployment="{outcome.deployment.pk}"] .batch-status .badge')
    expect(badge).to_have_text("Done", timeout=LIVE_TIMEOUT)
    expect(badge).to_have_attribute("data-status", "DONE")
    # The socket's last state disables Cancel all with the server's words, without a reload.
    expect(page.locator("#why-cancel-all")).to_have_text(NOTHING_TO_CANCEL, timeout=LIVE_TIMEOUT)
    expect(page.get_by_role("button", name="Cancel all")).to_be_disabled()


def test_an_env_var_set_outside_apollo_is_named_as_drift_on_the_environment_page(
    page: Page, live_apollo: LiveServer, web: Deployment, carol: User, staging: Environment
) -> None:
    log_in(page, live_apollo, "carol")
    page.goto(f"{live_apollo.url}/environments/{staging.name}/")
    expect(page.locator("#service-web")).to_be_visible(timeout=LIVE_TIMEOUT)
    expect(page.locator("#service-web .badge.drift")).to_have_count(0)
    apps = client.AppsV1Api(kube.api_client(staging.cluster))
    name = (
        apps.read_namespaced_deployment("web", staging.namespace)
        .spec.template.spec.containers[0]
        .name
    )
    # What `kubectl set env deployment/web LOG_LEVEL=debug` sends.
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": name, "env": [{"name": "LOG_LEVEL", "value": "debug"}]}]
                }
            }
        }
    }
    apps.patch_namespaced_deployment(
        "web", staging.namespace, patch, _content_type="application/strategic-merge-patch+json"
    )
    expect(page.locator("#service-web .drift-details")).to_contain_text(
        f"env LOG_LEVEL added (container {name})", timeout=LIVE_TIMEOUT
    )
    expect(page.locator("#service-web .badge.drift")).to_be_visible()
