import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def test_it_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    assert client.get("/environments/").status_code == 302


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
def test_it_lists_environments_with_cluster_and_namespace(
    personas: dict[str, User], persona: str
) -> None:
    factories.make_environment("production", namespace="prod-apps", availability="production")
    page = login(personas[persona]).get("/environments/").content.decode()
    assert "production" in page
    assert "prod-apps" in page


def test_it_lists_no_environment_to_mallory_who_may_view_none(mallory: User) -> None:
    factories.make_environment("production", namespace="prod-apps", availability="production")
    page = login(mallory).get("/environments/").content.decode()
    assert "prod-apps" not in page


def test_its_query_count_is_constant(alice: User) -> None:
    factories.make_environment()
    with CaptureQueriesContext(connection) as few:
        login(alice).get("/environments/")
    for _ in range(10):
        factories.make_environment()
    with CaptureQueriesContext(connection) as many:
        login(alice).get("/environments/")
    assert len(many) == len(few)
