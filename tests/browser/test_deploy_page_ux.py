"""The Deploy page explains itself, in a real browser (issue #13): what may not be chosen is
disabled with the reason beside it, the check follows the selection, the version picker shows
what runs and what would change, a forged choice gets a clear message, many services can be
filtered, and the whole form works from the keyboard with a visible focus."""

import re

import pytest
from django.contrib.auth.models import User
from kubernetes import client
from playwright.sync_api import Page, expect

from deployments.manifests import render_for
from deployments.models import CIStatus, DeployableVersion, Deployment, Service
from deployments.rendering import to_yaml
from deployments.status import Status
from environments import kube
from environments.models import Environment
from permissions.models import Blocker
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.browser.conftest import log_in
from tests.browser.test_deploy_journeys import choose
from tests.kubeenv import deploy, wait_until_terminal
from tests.live import LiveServer

pytestmark = pytest.mark.browser
LIVE_TIMEOUT = 40_000  # ms


def _running(service: Service, environment: Environment, version: DeployableVersion) -> None:
    """A DONE deployment of the version with its rendered manifests (no cluster needed)."""
    documents = render_for(service=service, environment=environment, version=version, group=None)
    deployment = factories.make_deployment(
        service=service,
        environment=environment,
        version=version,
        deployed_by=factories.make_user("deployer"),
        status=Status.DONE,
    )
    Deployment.objects.filter(pk=deployment.pk).update(rendered_manifests=to_yaml(documents))


def test_bob_sees_what_he_may_not_deploy_disabled_with_the_reason_beside_it(
    live_apollo: LiveServer, page: Page, bob: User, staging: Environment
) -> None:
    factories.make_environment("production", availability="production")
    factories.make_service("checkout")
    vault = factories.make_service("vault")
    grant(actor=None, user=bob, verbs=[Verb.DEPLOY], service=vault, effect=Effect.DENY)
    log_in(page, live_apollo, "bob")
    page.goto(live_apollo.url + "/deploy/")
    production = page.locator("#environment-choices").get_by_label("production", exact=True)
    expect(production).to_be_disabled()
    expect(production).to_have_accessible_description(
        "bob may not deploy production: no grant matches"
    )
    expect(page.locator("#environment-choices").get_by_label("staging", exact=True)).to_be_enabled()
    denied = page.locator("#service-choices").get_by_label("vault", exact=True)
    expect(denied).to_be_disabled()
    expect(page.locator("#service-choices")).to_contain_text("bob may not deploy vault")
    expect(page.locator("#service-choices")).to_contain_text("DENY")


def test_the_check_names_the_blocker_and_its_window_as_the_selection_changes(
    live_apollo: LiveServer, page: Page, bob: User, staging: Environment
) -> None:
    version = factories.make_version(factories.make_service("checkout"))
    Blocker.objects.create(
        name="release-freeze",
        kind="time_window",
        environment=staging,
        config={"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "23:59", "timezone": "UTC"},
    )
    log_in(page, live_apollo, "bob")
    page.goto(live_apollo.url + "/deploy/")
    choose(page, environments=["staging"], services=["checkout"])
    row = page.locator('#checks tr[data-target="checkout/staging"]')
    expect(row).to_contain_text("choose a version to check the blockers")
    page.locator(f"input[name=version][value='{version.git_commit_sha}']").check()
    expect(row).to_contain_text("release-freeze")
    expect(row).to_contain_text("23:59 UTC")
    expect(row).to_contain_text("You may not override this.")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Nothing was deployed")
    assert not Deployment.objects.exists()


def test_a_forged_choice_gets_a_clear_message_and_creates_nothing(
    live_apollo: LiveServer, page: Page, bob: User, staging: Environment
) -> None:
    factories.make_environment("production", availability="production")
    version = factories.make_version(factories.make_service("checkout"))
    log_in(page, live_apollo, "bob")
    page.goto(live_apollo.url + "/deploy/")
    choose(page, services=["checkout"])
    # Tick the disabled production box by hand (what a crafted request would post).
    page.evaluate(
        """() => {
            const box = [...document.querySelectorAll('#environment-choices .choice')]
              .find((c) => c.dataset.name === 'production').querySelector('input');
            box.disabled = false;
            box.checked = true;
        }"""
    )
    page.get_by_label("Commit sha or prefix").fill(version.git_commit_sha)
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator('#checks tr[data-target="checkout/production"]')).to_contain_text(
        "bob may not deploy checkout in production: no grant matches"
    )
    # An id that names nothing bob may see.
    page.evaluate(
        """() => {
            const box = document.querySelector('#environment-choices input[type=checkbox]');
            box.disabled = false;
            box.checked = true;
            box.value = '987654';
        }"""
    )
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator("#environment-choices .error")).to_have_text(
        "There is no environment 987654 that you may see."
    )
    expect(page.get_by_text("not one of the available choices")).to_have_count(0)
    assert not Deployment.objects.exists()


def test_the_version_picker_shows_what_runs_ci_the_commits_between_and_the_manifest_diff(
    live_apollo: LiveServer, page: Page, alice: User, staging: Environment
) -> None:
    service = factories.make_service("checkout")
    first, _between, third = (
        factories.make_version(service, commit_message=m, commit_author="dev")
        for m in ("Old basket", "Quicker search", "Faster basket")
    )
    _running(service, staging, first)
    CIStatus.objects.create(version=third, context="jenkins", state="success")
    log_in(page, live_apollo, "alice")
    page.goto(live_apollo.url + "/deploy/")
    choose(page, environments=["staging"], services=["checkout"])
    runs_now = page.locator("table.versions tr.running-now")
    expect(runs_now).to_contain_text("runs in staging")
    expect(runs_now).to_contain_text(first.git_commit_sha[:12])
    picked = page.locator("table.versions tr").filter(has_text=third.git_commit_sha[:12])
    expect(picked.locator(".ci")).to_have_text(re.compile("jenkins: success"))
    picked.locator("input[name=version]").check()
    row = page.locator('#checks tr[data-target="checkout/staging"]')
    expect(row).to_contain_text("2 commits ahead")
    row.get_by_text("2 commits ahead").click()
    expect(row.locator(".commits")).to_contain_text("Quicker search")
    expect(row.locator(".commits")).to_contain_text("Faster basket")
    with page.context.expect_page() as opened:
        row.get_by_role("link", name="manifest diff").click()
    diff = opened.value
    expect(diff.get_by_role("heading", name="What a deploy would change")).to_be_visible()
    expect(diff.locator("#manifests-diff")).to_contain_text("+")
    expect(diff.locator("#manifests-diff")).to_contain_text(third.git_commit_sha)
    expect(diff.locator("#manifests-diff")).to_contain_text(first.git_commit_sha)
    for shown in (page, diff):  # at phone width, nothing scrolls sideways
        shown.set_viewport_size({"width": 390, "height": 800})
        assert shown.evaluate("document.documentElement.scrollWidth") <= 390
    diff.close()
    assert Deployment.objects.count() == 1


def test_many_services_are_filtered_by_a_box_and_a_ticked_one_stays(
    live_apollo: LiveServer, page: Page, alice: User, staging: Environment
) -> None:
    for name in (
        "payments",
        "payouts",
        "catalog",
        "search",
        "basket",
        "auth",
        "mail",
        "cdn",
        "ads",
    ):
        factories.make_service(name)
    log_in(page, live_apollo, "alice")
    page.goto(live_apollo.url + "/deploy/")
    services = page.locator("#service-choices")
    services.get_by_label("catalog", exact=True).check()
    page.get_by_label("Filter services").fill("pay")
    expect(services.locator(".choice:visible")).to_have_count(3)
    expect(services.get_by_label("payouts", exact=True)).to_be_visible()
    expect(services.get_by_label("catalog", exact=True)).to_be_visible()  # ticked
    expect(services.get_by_label("search", exact=True)).to_be_hidden()
    page.get_by_label("Filter services").press("Enter")  # does not submit
    assert page.url.endswith("/deploy/")


def _tab_to(page: Page, check: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches the JS predicate `check` (on `el`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {check}; }})()"):
            return
    raise AssertionError(f"Tab never reached {check}")


def _focus_ring(page: Page) -> str:
    return str(
        page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return `${s.outlineStyle} ${s.outlineWidth}`; })()"
        )
    )


def test_bob_deploys_with_the_keyboard_only_and_always_sees_where_the_focus_is(
    live_apollo: LiveServer, page: Page, bob: User, staging: Environment, worker: object
) -> None:
    service = factories.make_service("checkout")
    version = factories.make_version(service, commit_message="Keyboard release")
    log_in(page, live_apollo, "bob")
    page.goto(live_apollo.url + "/deploy/")
    _tab_to(page, "el.name === 'environments' && !el.disabled")
    assert _focus_ring(page) == "solid 3px"
    page.keyboard.press("Space")
    _tab_to(page, "el.name === 'services' && !el.disabled")
    assert _focus_ring(page) == "solid 3px"
    page.keyboard.press("Space")
    radio = page.locator(f"input[name=version][value='{version.git_commit_sha}']")
    expect(radio).to_be_visible()
    _tab_to(page, "el.name === 'version'")
    assert _focus_ring(page) == "solid 3px"
    page.keyboard.press("Space")
    expect(radio).to_be_checked()
    _tab_to(page, "el.name === 'message'")
    page.keyboard.type("from the keyboard")
    expect(page.locator('#checks tr[data-target="checkout/staging"]')).to_contain_text("ready")
    _tab_to(page, "el.id === 'deploy-button'")
    assert _focus_ring(page) == "solid 3px"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile(r"Deployment #\d+"))).to_be_visible()
    expect(page.locator("#status")).to_have_text("Done", timeout=LIVE_TIMEOUT)
    assert Deployment.objects.get().message == "from the keyboard"


def test_kubectl_set_image_shows_as_drift_on_the_environment_page(
    live_apollo: LiveServer,
    page: Page,
    alice: User,
    carol: User,
    staging: Environment,
    worker: object,
) -> None:
    service = factories.make_service("web")
    outcome = deploy(alice, service, staging, factories.make_version(service), message="v1")
    assert outcome.deployment is not None, outcome.reason
    assert wait_until_terminal(outcome.deployment).status == Status.DONE
    log_in(page, live_apollo, "carol")
    page.goto(f"{live_apollo.url}/environments/{staging.name}/")
    article = page.locator('article[data-service="web"]')
    expect(article).to_be_visible(timeout=LIVE_TIMEOUT)
    expect(article.locator(".badge.drift")).to_have_count(0)
    # What `kubectl set image deployment/web web=nginx:1.27` sends, through the official client.
    apps = client.AppsV1Api(kube.api_client(staging.cluster))
    name = (
        apps.read_namespaced_deployment("web", staging.namespace)
        .spec.template.spec.containers[0]
        .name
    )
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": name, "image": "nginx:1.27"}]}}}
    }
    apps.patch_namespaced_deployment("web", staging.namespace, patch)
    expect(article.locator(".badge.drift")).to_have_text("drifted", timeout=LIVE_TIMEOUT)
    expect(article.locator(".drift-details")).to_contain_text(
        f"image of {name}: nginx:1.27 runs, Apollo applied", timeout=LIVE_TIMEOUT
    )
