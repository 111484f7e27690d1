"""The environment page in Chromium against kubesim: live pods, a pod restart, LiveTail over
all pods of a service with a filter, the web shell, and mallory refused everywhere."""

import re
import threading

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from environments import kube
from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.browser.conftest import log_in
from tests.kubeenv import deploy, wait_until_terminal
from tests.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def apollo(live_apollo: LiveServer, worker: threading.Event) -> LiveServer:
    """The live server and the deployment worker, for pages that watch rollouts."""
    return live_apollo


def _pod_names(environment: Environment) -> list[str]:
    items, _ = kube.list_objects(
        environment.cluster, "Pod", environment.namespace, label_selector="apollo.io/service=web"
    )
    return sorted(
        i["metadata"]["name"] for i in items if not i["metadata"].get("deletionTimestamp")
    )


def test_bob_watches_a_deploy_restarts_a_pod_follows_logs_and_runs_a_shell(
    apollo: LiveServer, page: Page, bob: User, staging: Environment
) -> None:
    grant(actor=None, user=bob, verbs=[Verb.EXEC], availability="staging", note="shell test")
    log_in(page, apollo, "bob")
    page.get_by_role("link", name="Environments").click()
    page.get_by_role("link", name="staging").click()
    expect(page.get_by_role("heading", name="staging")).to_be_visible()
    expect(page.locator("#live-connection")).to_contain_text("Live")

    service = factories.make_service("web", default_variables={"replicas": 2})
    version = factories.make_version(service, commit_message="Add the checkout button")
    outcome = deploy(bob, service, staging, version)
    assert outcome.deployment is not None
    pods = page.locator('article[data-service="web"] tr.pod')
    expect(pods.and_(page.locator(".is-ready"))).to_have_count(2, timeout=20_000)
    wait_until_terminal(outcome.deployment)
    expect(page.locator('article[data-service="web"]')).to_contain_text("Add the checkout button")
    expect(page.locator('article[data-service="web"]')).to_contain_text("deployed by bob")

    # Restart one pod: confirm, and the replacement appears.
    old = _pod_names(staging)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f'tr[data-pod="{old[0]}"]').get_by_role("button", name="Restart").click()
    expect(page.locator(".messages")).to_contain_text(f"Pod {old[0]} deleted")
    expect(page.locator(f'tr[data-pod="{old[0]}"]')).to_have_count(0, timeout=20_000)
    expect(pods.and_(page.locator(".is-ready"))).to_have_count(2, timeout=20_000)
    current = _pod_names(staging)
    assert set(current) - set(old)

    # LiveTail of all pods: lines from each pod, then a filter.
    page.get_by_role("link", name="Logs of all pods").click()
    lines = page.locator("#tail-lines")
    for name in current:
        expect(lines).to_contain_text(f"[{name}]", timeout=15_000)
    page.get_by_label("Filter").fill(current[1])
    expect(lines).not_to_contain_text(f"[{current[0]}]")
    expect(lines).to_contain_text(f"[{current[1]}]")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#tail-status")).to_contain_text("paused")
    page.get_by_role("button", name="Resume").click()

    # The web shell.
    page.goto(f"{apollo.url}/environments/{staging.name}/pods/{current[0]}/shell/")
    expect(page.locator("#shell-message")).to_contain_text("Connected: /bin/bash")
    page.locator(".xterm-helper-textarea").focus()
    page.keyboard.type("echo hello")
    page.keyboard.press("Enter")
    expect(page.locator(".xterm-rows")).to_contain_text(re.compile(r"echo hello\s*hello"))


def test_mallory_is_refused_at_every_route_and_socket(
    apollo: LiveServer, page: Page, mallory: User, alice: User, staging: Environment
) -> None:
    service = factories.make_service("web", default_variables={"replicas": 1})
    outcome = deploy(alice, service, staging, factories.make_version(service))
    assert outcome.deployment is not None
    wait_until_terminal(outcome.deployment)
    [pod] = _pod_names(staging)
    log_in(page, apollo, "mallory")
    # She may view nothing in staging: its page does not exist for her, nor any pod of it.
    response = page.goto(f"{apollo.url}/environments/{staging.name}/")
    assert response is not None
    assert response.status == 404
    expect(page.locator(f'tr[data-pod="{pod}"]')).to_have_count(0)
    base = f"{apollo.url}/environments/{staging.name}"
    for path in (
        "/logs/?service=web",
        f"/logs/?pod={pod}",
        f"/pods/{pod}/shell/",
        f"/pods/{pod}/jolokia/version",
    ):
        assert page.goto(base + path).status == 403, path  # type: ignore[union-attr]
    page.goto(f"{apollo.url}/")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    for path in (f"/pods/{pod}/restart/", "/services/web/restart/"):
        # With a valid CSRF token: the 403 is the gate's, not the CSRF check's.
        answer = page.request.post(
            base + path, form={"csrfmiddlewaretoken": token or ""}, max_redirects=0
        )
        assert answer.status == 403, path
        assert "CSRF" not in answer.text()
    assert _pod_names(staging) == [pod]
    # A refused socket is rejected during the handshake (before accept): it never opens.
    opened = page.evaluate(
        """async (paths) => Promise.all(paths.map((path) => new Promise((resolve) => {
            let open = false;
            const socket = new WebSocket(`ws://${location.host}${path}`);
            socket.onopen = () => { open = true; };
            socket.onclose = () => resolve(open);
        })))""",
        [
            f"/ws/environments/{staging.name}/logs/?service=web",
            f"/ws/environments/{staging.name}/logs/?pod={pod}",
            f"/ws/environments/{staging.name}/pods/{pod}/shell/",
        ],
    )
    assert opened == [False, False, False]
