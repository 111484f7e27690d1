"""Attack (issue #10, visibility): mallory, signed in with no grant at all, read every
deployment, environment, service, version, manifest and history row through the pages, the API
and the sockets. Each test failed on the code before the `view` verb; each passes now: lists
are filtered, details answer 404 (never 403 with content), sockets close with 4404."""

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import Deployment, Group
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.conftest import login
from tests.environments.sockets import connect_code

pytestmark = pytest.mark.django_db

SECRET_MESSAGE = "ship the secret basket"
SERVICE = "checkout-hidden"
ENVIRONMENT = "prod-hidden"


@pytest.fixture
def hidden(alice: User) -> Deployment:
    """A production deployment with a batch, a group, manifests and a snapshot."""
    environment = factories.make_environment(ENVIRONMENT, availability="production")
    service = factories.make_service(SERVICE)
    group = Group.objects.create(service=service, environment=environment, name="eu")
    return factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=alice,
        group=group,
        group_key="eu",
        message=SECRET_MESSAGE,
        batch=uuid.uuid4(),
        rendered_manifests="kind: Deployment\nmetadata: {name: checkout-hidden}\n",
        environment_snapshot={"services": {SERVICE: {"sha": "a" * 40}}},
    )


def _assert_nothing_of(page: str) -> None:
    for word in (SECRET_MESSAGE, SERVICE, ENVIRONMENT):
        assert word not in page, word


@pytest.mark.parametrize("path", ["/", "/environments/", "/history/", "/deploy/"])
def test_mallory_lists_show_no_deployment_environment_or_service(
    mallory: User, hidden: Deployment, path: str
) -> None:
    response = login(mallory).get(path)
    assert response.status_code == 200
    _assert_nothing_of(response.content.decode())


def test_mallory_gets_404_for_every_detail_page(mallory: User, hidden: Deployment) -> None:
    client = login(mallory)
    other = factories.make_deployment(
        service=hidden.service, environment=hidden.environment, deployed_by=hidden.deployed_by
    )
    for path in (
        f"/deployments/{hidden.pk}/",
        f"/deployments/{hidden.pk}/cancel/",
        f"/deployments/diff/?a={hidden.pk}&b={other.pk}",
        f"/deployments/diff/?d={hidden.pk}&d={other.pk}",
        f"/deployments/batch/{hidden.batch}/",
        f"/deployments/batch/{hidden.batch}/status/",
        f"/environments/{ENVIRONMENT}/",
        f"/services/{SERVICE}/",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        _assert_nothing_of(response.content.decode())


def test_mallory_cannot_post_to_a_deployment_she_may_not_view(
    mallory: User, hidden: Deployment
) -> None:
    client = login(mallory)
    for path, data in (
        (f"/deployments/{hidden.pk}/cancel/", {}),
        (f"/deployments/{hidden.pk}/redeploy/", {"which": "this", "message": "x"}),
        (f"/deployments/batch/{hidden.batch}/cancel/", {"all": "1"}),
        (f"/deployments/batch/{hidden.batch}/revert/", {"all": "1"}),
    ):
        assert client.post(path, data).status_code == 404, path
    assert Deployment.objects.count() == 1
    assert Deployment.objects.get().status == Status.DONE


def test_the_history_filter_does_not_offer_what_mallory_may_not_view(
    mallory: User, hidden: Deployment
) -> None:
    response = login(mallory).get("/history/", {"service": SERVICE})
    # An unknown choice for her: the form refuses it, and nothing is listed.
    assert response.status_code == 200
    assert SECRET_MESSAGE not in response.content.decode()


def _api(user: User) -> Client:
    return Client(headers={"Authorization": f"Token {factories.token_for(user)}"})


def test_mallory_token_lists_no_deployment_or_group_and_gets_404(
    mallory: User, hidden: Deployment
) -> None:
    client = _api(mallory)
    listing = client.get("/api/v1/deployments/")
    assert listing.status_code == 200
    assert listing.json()["results"] == []
    assert client.get("/api/v1/deployments/", {"service": SERVICE}).json()["results"] == []
    assert client.get(f"/api/v1/deployments/{hidden.pk}/").status_code == 404
    assert client.get("/api/v1/groups/").json() == []
    response = client.post(f"/api/v1/deployments/{hidden.pk}/cancel/")
    assert response.status_code == 404
    _assert_nothing_of(response.content.decode())


def test_every_api_get_as_jenkins_reads_nothing(jenkins: User, hidden: Deployment) -> None:
    """The jenkins persona registers versions and reports CI status; it reads nothing else."""
    auth = {"Authorization": f"Token {jenkins.api_key}"}  # type: ignore[attr-defined]
    client = Client(headers=auth)
    assert client.get("/api/v1/deployments/").json()["results"] == []
    assert client.get(f"/api/v1/deployments/{hidden.pk}/").status_code == 404
    assert client.get("/api/v1/groups/").json() == []
    assert client.get("/api/v1/groups/", {"service": SERVICE}).json() == []
    # Its own job still works.
    body = {"service": SERVICE, "git_commit_sha": "b" * 40}
    created = client.post("/api/v1/deployable-versions/", body, content_type="application/json")
    assert created.status_code == 201
    _assert_nothing_of(str(client.get("/api/v1/deployments/").content))


@pytest.mark.django_db(transaction=True)
async def test_mallory_sockets_close_with_4404(mallory: User, hidden: Deployment) -> None:
    for path in (
        f"/ws/deployments/{hidden.pk}/",
        f"/ws/deployments/batch/{hidden.batch}/",
        f"/ws/environments/{ENVIRONMENT}/status/",
    ):
        connected, code = await connect_code(path, mallory)
        assert not connected, path
        assert code == 4404, path


def test_bob_views_production_but_is_not_offered_it_to_deploy(
    bob: User, hidden: Deployment
) -> None:
    client = login(bob)
    assert client.get(f"/deployments/{hidden.pk}/").status_code == 200
    assert SECRET_MESSAGE in client.get("/history/").content.decode()
    assert client.get(f"/environments/{ENVIRONMENT}/").status_code == 200
    # Offered, disabled, with the reason beside it (issue #13): bob may view it.
    deploy_page = client.get("/deploy/")
    [choice] = [c for _, c in deploy_page.context["environment_boxes"] if c.name == ENVIRONMENT]
    assert not choice.deployable
    assert f"bob may not deploy {ENVIRONMENT}" in choice.reason


def test_an_environment_with_nothing_viewable_is_hidden_from_the_list(
    bob: User, hidden: Deployment
) -> None:
    Environment.objects.filter(pk=hidden.environment_id).update(availability="secret")
    client = login(bob)
    assert ENVIRONMENT not in client.get("/environments/").content.decode()
    assert client.get(f"/environments/{ENVIRONMENT}/").status_code == 404
    assert client.get(f"/deployments/{hidden.pk}/").status_code == 404


def test_a_hidden_deployment_is_a_404_even_with_debug_on(
    mallory: User, hidden: Deployment, settings: Any
) -> None:
    # The demo runs with DEBUG on: Django's technical 404 page (through Apollo's redacting
    # reporter filter) must answer 404 too, not fail with a 500 on a lazy setting.
    settings.DEBUG = True
    response = login(mallory).get(f"/deployments/{hidden.pk}/")
    assert response.status_code == 404
    _assert_nothing_of(response.content.decode())
