"""The History page reads the reader's grants once per request (the form's choices and the
page's rows share one visibility), and its SQL count does not grow with the rows."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

# A read of the reader's grant holdings: one per request, shared by the visibility (`view`) and
# the header's Deploy link (`deploy`) (permissions.middleware).
VIEW_GRANTS = 'FROM "permissions_grantuserobjectpermission"'


def _grant_reads(client: object, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)  # type: ignore[attr-defined]
    assert response.status_code == 200
    return sum(VIEW_GRANTS in q["sql"] for q in queries)


@pytest.mark.parametrize(
    "path",
    ["/history/", "/history/?q=basket", "/history/?kind=events", "/history/?service=checkout"],
)
def test_bob_s_grants_are_read_once_per_history_request(
    alice: User, bob: User, production: Environment, path: str
) -> None:
    checkout = factories.make_service("checkout")
    factories.make_deployment(
        service=checkout, environment=production, deployed_by=alice, message="Fix the basket"
    )
    assert _grant_reads(login(bob), path) == 1


def test_the_history_page_costs_the_same_queries_for_ten_times_the_rows(
    alice: User, bob: User, production: Environment
) -> None:
    def add(count: int) -> None:
        for i in range(count):
            service = factories.make_service()
            version = factories.make_version(service, commit_message=f"Fix the basket {i}")
            factories.make_deployment(
                service=service, environment=production, deployed_by=alice, version=version
            )

    add(3)
    client = login(bob)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/history/?q=basket").status_code == 200
    add(27)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/history/?q=basket")
    assert len(response.context["deployments"]) == 30
    assert len(many) == len(few)
