"""The home page reads the reader's view grants once (both of its tables share one
visibility), and its SQL count does not grow with the deployments or environments."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.conftest import login
from tests.pages_perf.test_history_queries import VIEW_GRANTS

pytestmark = pytest.mark.django_db


def test_bob_s_view_grants_are_read_once_per_home_page(alice: User, bob: User) -> None:
    production = factories.make_environment("production", availability="production")
    factories.make_deployment(
        service=factories.make_service(), environment=production, deployed_by=alice
    )
    with CaptureQueriesContext(connection) as queries:
        assert login(bob).get("/").status_code == 200
    assert sum(VIEW_GRANTS in q["sql"] for q in queries) == 1


def test_the_home_page_costs_the_same_queries_for_ten_times_the_rows(
    alice: User, bob: User
) -> None:
    def add(count: int) -> None:
        for _ in range(count):
            environment = factories.make_environment(availability="staging")
            factories.make_deployment(
                service=factories.make_service(), environment=environment, deployed_by=alice
            )

    add(2)
    client = login(bob)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/").status_code == 200
    add(18)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/")
    assert len(response.context["latest"]) == 20
    assert len(many) == len(few)
