"""Every live page runs its module and follows its socket (static/js/live.js): the environment
page, LiveTail and the shell, as alice (the page fixture also fails on any script error)."""

import threading

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from environments import kube
from environments.models import Environment
from tests import factories
from tests.browser.conftest import log_in
from tests.kubeenv import deploy, wait_until_terminal
from tests.live import LiveServer

pytestmark = pytest.mark.browser


def test_alice_follows_the_environment_the_logs_of_a_service_and_a_shell(
    live_apollo: LiveServer, worker: threading.Event, page: Page, alice: User, staging: Environment
) -> None:
    service = factories.make_service("web", default_variables={"replicas": 1})
    outcome = deploy(alice, service, staging, factories.make_version(service))
    assert outcome.deployment is not None
    wait_until_terminal(outcome.deployment)
    items, _ = kube.list_objects(
        staging.cluster, "Pod", staging.namespace, label_selector="apollo.io/service=web"
    )
    [pod] = [i["metadata"]["name"] for i in items if not i["metadata"].get("deletionTimestamp")]
    log_in(page, live_apollo, "alice")
    base = f"{live_apollo.url}/environments/{staging.name}"

    page.goto(base + "/")
    expect(page.locator("#live-connection")).to_contain_text("Live")
    expect(page.locator(f'tr[data-pod="{pod}"]')).to_be_visible()

    page.goto(base + "/logs/?service=web")
    expect(page.locator("#tail-lines")).to_contain_text(f"[{pod}]")
    expect(page.locator("#tail-status")).to_contain_text("received")

    page.goto(f"{base}/pods/{pod}/shell/")
    expect(page.locator("#shell-message")).to_contain_text("Connected: /bin/bash")
