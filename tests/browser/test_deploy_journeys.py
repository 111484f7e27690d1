"""Deploy journeys in a real browser: the Deploy page, the live deployment page, cancel.

The live server runs in a child process and the worker in this one; both use the file-backed
test database and reach kubesim over TLS with the staging environment's token.
"""

import re

import pytest
from django.contrib.auth.models import User
from kubernetes import client
from playwright.sync_api import Page, expect

from deployments.models import DeployableVersion, Deployment
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from permissions.services import explain, grant
from permissions.verbs import Verb
from tests import factories
from tests.browser.conftest import log_in
from tests.kubeenv import deploy, wait_for, wait_until_terminal
from tests.live import LiveServer

pytestmark = pytest.mark.browser
LIVE_TIMEOUT = 40_000  # ms: a rollout on kubesim plus the page catching up


def choose(page: Page, *, environments: list[str] = (), services: list[str] = ()) -> None:  # type: ignore[assignment]
    """Tick environments and services on the Deploy page (checkboxes, by their label)."""
    for name in environments:
        page.locator("#environment-choices").get_by_label(name, exact=True).check()
    for name in services:
        page.locator("#service-choices").get_by_label(name, exact=True).check()


def _deploy_through_the_page(
    page: Page,
    live: LiveServer,
    environment: str,
    service: str,
    *,
    sha: str = "",
    version: DeployableVersion | None = None,
    message: str = "",
) -> None:
    page.goto(live.url + "/deploy/")
    choose(page, environments=[environment], services=[service])
    if version is not None:
        # The versions of the chosen service arrive without a page reload.
        radio = page.locator(f"input[name=version][value='{version.git_commit_sha}']")
        expect(radio).to_be_visible()
        radio.check()
    else:
        page.get_by_label("Commit sha or prefix").fill(sha)
    if message:
        page.get_by_label("Message").fill(message)
    page.get_by_role("button", name="Deploy", exact=True).click()


def test_bob_deploys_to_staging_and_lands_on_the_deployment_that_reaches_done_without_reloading(
    live_apollo: LiveServer, page: Page, bob: User, staging: Environment, worker: object
) -> None:
    service = factories.make_service("checkout")
    version = factories.make_version(
        service, commit_message="Faster basket", commit_author="dev", branch="main"
    )
    log_in(page, live_apollo, "bob")
    page.goto(live_apollo.url + "/deploy/")
    choose(page, services=["checkout"])
    expect(page.get_by_text("Faster basket")).to_be_visible()
    _deploy_through_the_page(
        page, live_apollo, "staging", "checkout", version=version, message="ship it"
    )
    # One deployment: its own page, which follows it live.
    expect(page.get_by_role("heading", name=re.compile(r"Deployment #\d+"))).to_be_visible()
    page.evaluate("window.__same_page = true")  # gone if the page reloads
    expect(page.locator("#status")).to_have_text("Done", timeout=LIVE_TIMEOUT)
    expect(page.locator("#timeline")).to_contain_text("applied", timeout=LIVE_TIMEOUT)
    expect(page.locator("#snapshot")).to_contain_text(version.git_commit_sha[:12])
    assert page.evaluate("window.__same_page") is True
    deployment = Deployment.objects.get()
    assert page.url.endswith(f"/deployments/{deployment.pk}/")
    assert deployment.status == Status.DONE
    assert deployment.message == "ship it"


def test_two_services_land_on_the_batch_page_which_follows_both_to_done_without_reloading(
    live_apollo: LiveServer, page: Page, alice: User, staging: Environment, worker: object
) -> None:
    sha = "c0ffee" + "0" * 34
    for name in ("basket", "search"):
        factories.make_version(factories.make_service(name), sha)
    log_in(page, live_apollo, "alice")
    page.goto(live_apollo.url + "/deploy/")
    choose(page, environments=["staging"], services=["basket", "search"])
    page.get_by_label("Commit sha or prefix").fill("c0ffee")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.get_by_role("heading", name="Deployments of one request")).to_be_visible()
    page.evaluate("window.__same_page = true")
    for deployment in Deployment.objects.all():
        row = page.locator(f'tr[data-deployment="{deployment.pk}"]')
        expect(row.locator(".batch-status .badge")).to_have_text("Done", timeout=LIVE_TIMEOUT)
    assert page.evaluate("window.__same_page") is True
    assert Deployment.objects.count() == 2


def test_staging_and_production_without_a_message_create_nothing_and_list_the_refusal(
    live_apollo: LiveServer, page: Page, alice: User, staging: Environment
) -> None:
    factories.make_environment(
        "production", availability="production", require_deployment_message=True
    )
    version = factories.make_version(factories.make_service("checkout"))
    log_in(page, live_apollo, "alice")
    page.goto(live_apollo.url + "/deploy/")
    choose(page, environments=["staging", "production"], services=["checkout"])
    page.get_by_label("Commit sha or prefix").fill(version.git_commit_sha)
    # Before the click the check already says it...
    refused = page.locator('#checks tr[data-target="checkout/production"]')
    expect(refused).to_contain_text("production requires a deployment message")
    # ...and a Deploy anyway is refused as a whole.
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Nothing was deployed")
    expect(refused).to_contain_text("production requires a deployment message")
    expect(page.locator('#checks tr[data-target="checkout/staging"]')).to_contain_text("held")
    assert not Deployment.objects.exists()
    # The selection is kept: untick production and deploy the rest.
    page.locator("#environment-choices").get_by_label("production", exact=True).uncheck()
    expect(page.locator('#checks tr[data-target="checkout/production"]')).to_have_count(0)
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"Deployment #\d+"))).to_be_visible()
    assert Deployment.objects.get().environment == staging


def test_bob_is_refused_on_production_with_the_explanation(
    live_apollo: LiveServer, page: Page, bob: User, staging: Environment
) -> None:
    production = factories.make_environment("production", availability="production")
    service = factories.make_service("checkout")
    # bob may deploy payments to production, so production is offered; checkout is not his.
    grant(
        actor=None,
        user=bob,
        verbs=[Verb.DEPLOY],
        environment=production,
        service=factories.make_service("payments"),
    )
    version = factories.make_version(service)
    log_in(page, live_apollo, "bob")
    _deploy_through_the_page(
        page, live_apollo, "production", "checkout", sha=version.git_commit_sha[:8]
    )
    refused = page.locator('#checks tr[data-target="checkout/production"]')
    expect(refused).to_contain_text("refused")
    reason = explain(bob, Verb.DEPLOY, service=service, environment=production).reason
    expect(refused).to_contain_text(reason)
    assert not Deployment.objects.exists()


def test_a_missing_image_ends_failed_naming_the_image(
    live_apollo: LiveServer,
    page: Page,
    bob: User,
    staging: Environment,
    worker: object,
    kubesim: KubesimHandle,
) -> None:
    service = factories.make_service("ghost")
    version = factories.make_version(service)
    kubesim.mark_image_missing(version.image)
    log_in(page, live_apollo, "bob")
    _deploy_through_the_page(page, live_apollo, "staging", "ghost", sha=version.git_commit_sha)
    expect(page.locator("#status")).to_have_text("Failed", timeout=LIVE_TIMEOUT)
    expect(page.locator("#status-reason")).to_contain_text(f"image {version.image} not found")


def test_carol_sees_no_cancel_button_and_a_forged_cancel_is_refused(
    live_apollo: LiveServer, page: Page, alice: User, carol: User
) -> None:
    service = factories.make_service("checkout")
    running = factories.make_deployment(
        service=service,
        environment=factories.make_environment("staging"),
        deployed_by=alice,
        source_version=factories.make_version(service),
        status=Status.STARTED,
    )
    log_in(page, live_apollo, "carol")
    page.goto(f"{live_apollo.url}/deployments/{running.pk}/")
    expect(page.locator("#status")).to_have_text("Started")
    expect(page.get_by_text("Cancel deployment")).to_have_count(0)
    # A forged form with a valid CSRF token: only the server-side check can refuse it.
    page.evaluate(
        """(url) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = url;
            const token = document.querySelector("input[name=csrfmiddlewaretoken]").cloneNode();
            form.append(token);
            document.body.append(form);
            form.submit();
        }""",
        f"/deployments/{running.pk}/cancel/",
    )
    expect(page.locator(".messages")).to_contain_text("Not cancelled")
    expect(page.locator(".messages")).to_contain_text("carol")
    running.refresh_from_db()
    assert running.status == Status.STARTED


def test_alice_cancels_a_slow_rollout_and_the_previous_version_runs_again(
    live_apollo: LiveServer,
    page: Page,
    alice: User,
    staging: Environment,
    worker: object,
    kubesim: KubesimHandle,
) -> None:
    service = factories.make_service("api")
    old, new = factories.make_version(service), factories.make_version(service)
    first = wait_until_terminal(deploy(alice, service, staging, old).deployment)  # type: ignore[arg-type]
    assert first.status == Status.DONE, first.status_reason
    kubesim.register_image(new.image, "notready")
    log_in(page, live_apollo, "alice")
    _deploy_through_the_page(page, live_apollo, "staging", "api", sha=new.git_commit_sha)
    expect(page.get_by_role("heading", name=re.compile(r"Deployment #\d+"))).to_be_visible()
    second = Deployment.objects.get(version=new)
    wait_for(second, lambda d: d.applied_at is not None)
    page.get_by_role("link", name="Cancel deployment…").click()
    expect(page.get_by_role("heading", name=re.compile("Cancel deployment"))).to_be_visible()
    expect(page.get_by_text(old.git_commit_sha[:12])).to_be_visible()
    page.get_by_role("button", name="Yes, cancel the deployment").click()
    expect(page.locator(".messages")).to_contain_text("is being cancelled")
    expect(page.locator("#status")).to_have_text("Canceled", timeout=LIVE_TIMEOUT)
    expect(page.locator("#status-reason")).to_contain_text(
        f"rolled back to {old.git_commit_sha[:12]}"
    )
    apps = client.AppsV1Api(kubesim.api_client())
    running = apps.read_namespaced_deployment("api", staging.namespace)
    assert running.spec.template.spec.containers[0].image == old.image
