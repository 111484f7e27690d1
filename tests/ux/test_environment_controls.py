"""The environment page's action controls (issue 13): each shown only when the action is
possible for this viewer now, or disabled with the reason; hidden when the viewer may never
do it. The reason beside a disabled control is the one the server refuses the action with:
each test posts the disabled action and reads the same words."""

import html
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from deployments.models import Service
from environments import kube
from environments.models import Environment
from permissions.models import Blocker
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests.conftest import login
from tests.environments.sockets import communicator, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


async def _page(user: User, environment: Environment) -> str:
    """The live part of the environment page as this user's socket renders it."""
    socket = await communicator(f"/ws/environments/{environment.name}/status/", user)
    assert (await socket.connect(timeout=10))[0]
    state = await receive_until(socket, lambda m: "web-" in m["html"] and m["reachable"])
    await socket.disconnect()
    return str(state["html"])


def _reason(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">(?:[A-Za-z]+: )?([^<]*)<', page)
    assert found is not None, element_id
    return html.unescape(found.group(1))


def _pod(environment: Environment) -> str:
    pods, _ = kube.list_objects(environment.cluster, "Pod", environment.namespace)
    return str(
        next(p for p in pods if p["metadata"]["name"].startswith("web-"))["metadata"]["name"]
    )


def _get(user: User, url: str, **query: str) -> Any:
    return login(user).get(url, query)


def _refused(user: User, url: str, **data: Any) -> str:
    response = login(user).post(url, data, follow=True)
    if response.status_code == 403:
        found = re.search(r'<p class="lead">([^<]*)</p>', response.content.decode())
        assert found is not None
        return html.unescape(found.group(1))
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1, messages
    return messages[0]


async def test_carol_sees_logs_and_no_control_she_may_never_use(
    alice: User, carol: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    page = await _page(carol, staging)
    # (focusable: at phone width it scrolls sideways, and may hold no link to reach it by)
    assert '<table class="pods" tabindex="0" aria-label="Pods of web">' in page
    assert "Logs of all pods</a>" in page
    assert "Logs</a>" in page
    for hidden in ("Rolling restart", ">Restart<", "Shell", "Scale", "disabled"):
        assert hidden not in page, hidden


async def test_alice_may_do_everything_and_nothing_is_disabled(
    alice: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    page = await _page(alice, staging)
    for shown in ("Logs of all pods</a>", "Shell</a>", 'type="submit">Rolling restart<'):
        assert shown in page, shown
    assert "disabled" not in page


async def test_a_denied_verb_bob_holds_elsewhere_is_disabled_with_the_gates_reason(
    alice: User, bob: User, staging: Environment
) -> None:
    service: Service = await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    await sync_to_async(grant)(actor=None, user=bob, verbs=[Verb.EXEC], availability="staging")
    await sync_to_async(grant)(
        actor=None,
        user=bob,
        verbs=[Verb.RESTART, Verb.VIEW_LOGS, Verb.EXEC],
        effect=Effect.DENY,
        service=service,
        environment=staging,
    )
    page = await _page(bob, staging)
    restart = _reason(page, "why-restart-web")
    logs = _reason(page, "why-logs-web")
    pod_restart = _reason(page, "why-podrestart-web")
    assert "bob may not restart web in staging" in restart
    assert "bob may not view logs of web in staging" in logs
    assert 'disabled aria-describedby="why-podrestart-web">Restart<' in page
    shell = _reason(page, "why-shell-web")
    assert "bob may not exec into web in staging" in shell
    assert 'disabled aria-describedby="why-shell-web">Shell<' in page
    # The server refuses each with the very words shown beside it.
    pod = await sync_to_async(_pod)(staging)
    base = f"/environments/{staging.name}"
    assert await sync_to_async(_refused)(bob, f"{base}/services/web/restart/") == restart
    assert await sync_to_async(_refused)(bob, f"{base}/pods/{pod}/restart/") == pod_restart
    response = await sync_to_async(_get)(bob, f"{base}/logs/", service="web")
    assert response.status_code == 403
    assert logs in html.unescape(response.content.decode())
    response = await sync_to_async(_get)(bob, f"{base}/pods/{pod}/shell/")
    assert response.status_code == 403
    assert shell in html.unescape(response.content.decode())


async def test_bob_without_exec_anywhere_sees_no_shell(
    alice: User, bob: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    page = await _page(bob, staging)
    assert "Shell" not in page  # bob holds exec nowhere: hidden, not disabled
    assert 'type="submit">Rolling restart<' in page


async def test_a_blocker_disables_the_rolling_restart_with_its_name_and_reason(
    alice: User, bob: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    await sync_to_async(Blocker.objects.create)(
        name="freeze", kind=Blocker.Kind.UNCONDITIONAL, environment=staging
    )
    page = await _page(bob, staging)
    reason = _reason(page, "why-restart-web")
    assert reason.startswith("blocked by freeze: ")
    # Restarting a single pod is not a rollout: blockers do not refuse it.
    assert 'type="submit">Restart<' in page
    refused = await sync_to_async(_refused)(
        bob, f"/environments/{staging.name}/services/web/restart/"
    )
    assert refused == f"Cannot restart: {reason}"
