import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from deployments.status import Status
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def test_it_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
def test_every_persona_who_may_view_sees_environments_and_latest_deployments(
    personas: dict[str, User], persona: str
) -> None:
    environment = factories.make_environment("staging")
    service = factories.make_service("checkout")
    factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=personas["alice"],
        status=Status.DONE,
        message="ship the new basket",
    )
    response = login(personas[persona]).get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "staging" in page
    assert "checkout" in page
    assert "ship the new basket" in page


def test_the_admin_link_shows_only_for_staff(alice: User, mallory: User) -> None:
    assert 'href="/admin/"' in login(alice).get("/").content.decode()
    assert 'href="/admin/"' not in login(mallory).get("/").content.decode()


def _home_queries(user: User) -> int:
    client = login(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


def _populate(environments: int, deployments_each: int, user: User) -> None:
    cluster = factories.make_cluster()
    service = factories.make_service()
    for _ in range(environments):
        environment = factories.make_environment(cluster=cluster)
        for _ in range(deployments_each):
            factories.make_deployment(service=service, environment=environment, deployed_by=user)


def test_the_number_of_queries_does_not_grow_with_the_data(alice: User) -> None:
    _populate(1, 1, alice)
    small = _home_queries(alice)
    _populate(12, 3, alice)
    assert _home_queries(alice) == small
    # The session with its user (permissions.sessions), environments, deployments: pinned so
    # that an N+1 shows up here.
    assert small == 3
