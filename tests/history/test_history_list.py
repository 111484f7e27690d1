import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from history.views import PAGE_SIZE
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def test_it_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    assert client.get("/history/").status_code == 302


def test_it_pages_through_every_deployment_once_newest_first(alice: User, mallory: User) -> None:
    service = factories.make_service()
    environment = factories.make_environment()
    created = [
        factories.make_deployment(service=service, environment=environment, deployed_by=alice)
        for _ in range(PAGE_SIZE + 7)
    ]
    client = login(mallory)
    first = client.get("/history/")
    seen = [d.pk for d in first.context["deployments"]]
    assert len(seen) == PAGE_SIZE
    second = client.get("/history/", {"after": first.context["next_cursor"]})
    seen += [d.pk for d in second.context["deployments"]]
    assert second.context["next_cursor"] == ""
    assert seen == [d.pk for d in sorted(created, key=lambda d: (d.created_at, d.pk), reverse=True)]


def test_a_malformed_cursor_starts_from_the_newest(alice: User) -> None:
    response = login(alice).get("/history/", {"after": "not-a-cursor"})
    assert response.status_code == 200


def test_its_query_count_is_constant(alice: User) -> None:
    service = factories.make_service()
    environment = factories.make_environment()
    factories.make_deployment(service=service, environment=environment, deployed_by=alice)
    with CaptureQueriesContext(connection) as few:
        login(alice).get("/history/")
    for _ in range(20):
        factories.make_deployment(
            service=factories.make_service(),
            environment=factories.make_environment(),
            deployed_by=factories.make_user(f"user{_}"),
        )
    with CaptureQueriesContext(connection) as many:
        login(alice).get("/history/")
    assert len(many) == len(few)
