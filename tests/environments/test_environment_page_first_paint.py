"""The environment page is complete before its socket connects, and useful without JavaScript:
the status the shared watch last published, and Apollo's own records, with no Kubernetes call."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from environments import kube
from environments.models import Environment
from tests.conftest import login
from tests.environments.sockets import communicator, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _page(user: User, environment: Environment) -> str:
    response = login(user).get(f"/environments/{environment.name}/")
    assert response.status_code == 200
    return response.content.decode()


async def test_while_somebody_watches_the_page_arrives_with_the_pods(
    alice: User, carol: User, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sync_to_async(deployed)(alice, staging, "web")
    socket = await communicator(f"/ws/environments/{staging.name}/status/", alice)
    assert (await socket.connect(timeout=10))[0]
    await receive_until(socket, lambda m: "web-" in m["html"] and m["reachable"])

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the page must not call Kubernetes")

    monkeypatch.setattr(kube, "list_objects", refuse)
    html = await sync_to_async(_page)(carol, staging)
    assert "Cluster as last seen" in html
    assert 'data-service="web"' in html
    assert 'class="pod phase-running' in html
    # Actions come with the live status only (they ask for confirmation there).
    assert "Rolling restart" not in html
    await socket.disconnect()


def test_without_a_watch_the_page_shows_what_apollo_deployed(
    alice: User, carol: User, staging: Environment
) -> None:
    service = deployed(alice, staging, "web")
    html = _page(carol, staging)
    assert "Waiting for the cluster's status." in html
    assert "Last successful deployments by Apollo" in html
    sha = service.versions.get().git_commit_sha
    assert f"<code>{sha[:12]}</code>" in html
    assert "<td>alice</td>" in html
    assert "Live updates and actions need JavaScript" in html
