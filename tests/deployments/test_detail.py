import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import Deployment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(alice: User) -> Deployment:
    return factories.make_deployment(
        service=factories.make_service("checkout"),
        environment=factories.make_environment("staging"),
        deployed_by=alice,
        message="first release",
    )


def test_it_sends_anonymous_visitors_to_the_login_page(
    client: Client, deployment: Deployment
) -> None:
    assert client.get(f"/deployments/{deployment.pk}/").status_code == 302


@pytest.mark.parametrize("persona", ["alice", "bob", "carol", "mallory"])
def test_signed_in_personas_see_the_deployment(
    personas: dict[str, User], persona: str, deployment: Deployment
) -> None:
    page = login(personas[persona]).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "first release" in page
    assert deployment.version.git_commit_sha in page
    assert f'data-ws="/ws/deployments/{deployment.pk}/"' in page


def test_an_unknown_deployment_is_404(alice: User) -> None:
    assert login(alice).get("/deployments/999999/").status_code == 404
