"""Issue #14's acceptance for rollbacks that stick and automatic revert, in a real browser.

bob reverts a bad deploy and marks it bad; carol's attempt to deploy it is refused with the
reason; alice overrides. A crash-looping version in an environment with automatic revert ends
FAILED and the previous version is back and DONE without anyone clicking. The live server runs
in a child process, the worker in this one, against kubesim over TLS.
"""

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from deployments.models import BadVersion, Deployment, RevertPolicy
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.browser.conftest import log_in
from tests.kubeenv import deploy, wait_for, wait_until_terminal
from tests.live import LiveServer

pytestmark = pytest.mark.browser
LIVE_TIMEOUT = 40_000  # ms: a rollout on kubesim plus the page catching up


def _done(user: User, service: object, environment: Environment, version: object) -> Deployment:
    outcome = deploy(user, service, environment, version)  # type: ignore[arg-type]
    assert outcome.deployment is not None, outcome.reason
    finished = wait_until_terminal(outcome.deployment, timeout=40)
    assert finished.status == Status.DONE, finished.status_reason
    return finished


def _pick_bad_version(page: Page, live: LiveServer, sha: str) -> None:
    page.goto(live.url + "/deploy/")
    page.locator("#environment-choices").get_by_label("staging", exact=True).check()
    page.locator("#service-choices").get_by_label("shop", exact=True).check()
    radio = page.locator(f"input[name=version][value='{sha}']")
    expect(radio).to_be_visible()
    # Struck through, with who marked it and why.
    row = page.locator("tr.bad-version")
    expect(row.locator("del code")).to_have_attribute("title", sha)
    expect(row).to_contain_text("marked by bob — 500s on /pay")
    radio.check()
    page.get_by_role("button", name="Deploy", exact=True).click()


def test_bob_marks_bad_carol_is_refused_alice_overrides(
    live_apollo: LiveServer,
    page: Page,
    browser: Browser,
    bob: User,
    carol: User,
    alice: User,
    staging: Environment,
    worker: object,
) -> None:
    service = factories.make_service("shop")
    good = factories.make_version(service, commit_message="Stable basket")
    bad = factories.make_version(service, commit_message="New basket")
    _done(bob, service, staging, good)
    shipped = _done(bob, service, staging, bad)
    # carol may deploy here for this test: the refusal must be the mark's, not her grant's.
    grant(actor=None, user=carol, verbs=[Verb.DEPLOY], availability="staging")

    log_in(page, live_apollo, "bob")
    page.goto(f"{live_apollo.url}/deployments/{shipped.pk}/")
    roll_back = page.locator("#roll-back")
    roll_back.get_by_label(re.compile("and mark .* bad in staging")).check()
    roll_back.get_by_label("Why this version is bad").fill("500s on /pay")
    roll_back.get_by_role("button", name="Roll back to the previous version").click()
    expect(page.locator("#revert-of")).to_contain_text(f"A revert of #{shipped.pk}")
    expect(page.locator("#status")).to_have_text("Done", timeout=LIVE_TIMEOUT)
    mark = BadVersion.objects.active().get()
    assert (mark.sha, mark.marked_by) == (bad.git_commit_sha, bob)
    page.goto(f"{live_apollo.url}/deployments/{shipped.pk}/")
    expect(page.locator("#bad-mark")).to_contain_text("marked bad in staging by bob")

    carol_context = browser.new_context()
    carol_page = carol_context.new_page()
    log_in(carol_page, live_apollo, "carol")
    _pick_bad_version(carol_page, live_apollo, bad.git_commit_sha)
    verdict = carol_page.locator("tr.check-blocked")
    expect(verdict).to_contain_text("marked bad in staging by bob")
    expect(verdict).to_contain_text("500s on /pay")
    expect(verdict).to_contain_text("You may not override this.")
    expect(carol_page.locator("#id_override_reason")).to_have_count(0)
    carol_context.close()
    assert not Deployment.objects.filter(deployed_by=carol).exists()

    alice_context = browser.new_context()
    alice_page = alice_context.new_page()
    log_in(alice_page, live_apollo, "alice")
    _pick_bad_version(alice_page, live_apollo, bad.git_commit_sha)
    alice_page.locator("#id_override_reason").fill("the fix is in the config map")
    alice_page.get_by_role("button", name="Deploy", exact=True).click()
    expect(alice_page.locator("#override")).to_contain_text("the fix is in the config map")
    expect(alice_page.locator("#override")).to_contain_text("bad version")
    expect(alice_page.locator("#status")).to_have_text("Done", timeout=LIVE_TIMEOUT)
    alice_context.close()
    overridden = Deployment.objects.get(deployed_by=alice)
    assert overridden.version == bad


def test_a_crash_looping_version_is_reverted_without_anyone_clicking(
    live_apollo: LiveServer,
    page: Page,
    bob: User,
    staging: Environment,
    kubesim: KubesimHandle,
    worker: object,
) -> None:
    RevertPolicy.objects.create(environment=staging, enabled=True, mark_bad=True)
    service = factories.make_service("shop")
    good = factories.make_version(service, commit_message="Stable basket")
    bad = factories.make_version(service, commit_message="Crashing basket")
    kubesim.register_image(bad.image, "crashloop", seconds=0.05)
    _done(bob, service, staging, good)
    outcome = deploy(bob, service, staging, bad)
    assert outcome.deployment is not None

    log_in(page, live_apollo, "bob")
    page.goto(f"{live_apollo.url}/deployments/{outcome.deployment.pk}/")
    expect(page.locator("#status")).to_have_text("Failed", timeout=LIVE_TIMEOUT)
    revert = wait_for(
        outcome.deployment, lambda d: Deployment.objects.filter(cause=d).exists()
    ).reverts.get()
    page.reload()
    expect(page.locator("#automatic-revert")).to_contain_text("Reverted automatically")
    expect(page.locator("#bad-mark")).to_contain_text("marked bad in staging by Apollo")
    page.locator("#automatic-revert-link").click()
    expect(page.locator("#revert-of")).to_contain_text("requested automatically by Apollo")
    expect(page.locator("#status")).to_have_text("Done", timeout=LIVE_TIMEOUT)
    revert.refresh_from_db()
    assert (revert.status, revert.version) == (Status.DONE, good)
