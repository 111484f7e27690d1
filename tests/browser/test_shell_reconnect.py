"""The web shell in Chromium: when a session ends, the page says so and offers a new one.

A shell session cannot resume once its socket has closed (the process on the pod is gone), so
the page does not reconnect behind the user's back: it says why the session ended and offers
"Open a new shell" (issue #17, point 3: the shell closed and never came back)."""

import re
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


def _pod(environment: Environment) -> str:
    items, _ = kube.list_objects(
        environment.cluster, "Pod", environment.namespace, label_selector="apollo.io/service=web"
    )
    return str(items[0]["metadata"]["name"])


def _type(page: Page, line: str) -> None:
    page.locator(".xterm-helper-textarea").focus()
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def test_a_shell_that_ended_offers_a_new_session_which_works(
    live_apollo: LiveServer, worker: threading.Event, page: Page, alice: User, staging: Environment
) -> None:
    service = factories.make_service("web", default_variables={"replicas": 1})
    outcome = deploy(alice, service, staging, factories.make_version(service))
    assert outcome.deployment is not None
    wait_until_terminal(outcome.deployment)
    log_in(page, live_apollo, "alice")
    page.goto(f"{live_apollo.url}/environments/{staging.name}/pods/{_pod(staging)}/shell/")
    message, again = page.locator("#shell-message"), page.locator("#shell-reconnect")
    expect(message).to_contain_text("Connected: /bin/bash")
    expect(again).to_be_hidden()

    _type(page, "exit")
    expect(message).to_contain_text("Session ended")
    expect(again).to_be_visible()

    again.click()
    expect(message).to_contain_text("Connected: /bin/bash")
    expect(again).to_be_hidden()
    _type(page, "echo second-session")
    expect(page.locator(".xterm-rows")).to_contain_text(
        re.compile(r"echo second-session\s*second-session"), timeout=30_000
    )
