"""The History page costs a fixed number of queries for a reader who holds view grants, whatever
the number of rows, services and matches: on its first page, filtered, searched (a
deployment's message, a commit's message) and deep in its keyset pages."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment
from deployments.selectors import format_cursor
from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

# What the page reads: the session and its user, the services and environments with the user
# named (the form's catalogue, which the visibility is decided over), the reader's view
# holdings, the header's deploy holdings, the page; a search adds its matches. Bob holds
# deploy grants: the header reads the services and environments to find where he may deploy.
MAX_QUERIES = {"reader": 12, "carol": 12, "bob": 14}

PATHS: dict[str, Callable[[Environment], str]] = {
    "first page": lambda _: "/history/",
    "filtered by status": lambda _: "/history/?status=FAILED",
    "filtered by environment and user": lambda env: f"/history/?environment={env.name}&user=alice",
    "searched in deployment messages": lambda _: "/history/?q=hotfix",
    "searched in commit messages": lambda _: "/history/?q=ledger",
}


@pytest.fixture
def reader(db: None) -> User:
    """As the bench's reader: may view every staging environment, nothing else."""
    user = factories.make_user("reader")
    grant(actor=None, user=user, verbs=[Verb.VIEW], availability="staging", note="reader")
    return user


def _add(count: int, *, environment: Environment, by: User) -> None:
    for i in range(count):
        service = factories.make_service()
        version = factories.make_version(service, commit_message=f"Reworks the ledger {i}")
        factories.make_deployment(
            service=service,
            environment=environment,
            deployed_by=by,
            version=version,
            status="FAILED",
            message=f"A hotfix {i}",
        )


def _count(client: object, path: str) -> tuple[int, int]:
    """The queries of a request and the rows it showed."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)  # type: ignore[attr-defined]
    assert response.status_code == 200
    return len(queries), len(response.context["deployments"])


@pytest.mark.parametrize("persona", ["reader", "carol", "bob"])
@pytest.mark.parametrize("page", sorted(PATHS))
def test_a_reader_s_history_page_costs_the_same_queries_for_ten_times_the_rows(
    request: pytest.FixtureRequest, alice: User, persona: str, page: str
) -> None:
    user: User = request.getfixturevalue(persona)
    staging = factories.make_environment("staging-eu", availability="staging")
    path = PATHS[page](staging)
    client = login(user)
    _add(3, environment=staging, by=alice)
    few, shown_few = _count(client, path)
    _add(27, environment=staging, by=alice)
    many, shown_many = _count(client, path)
    assert (shown_few, shown_many) == (3, 30)
    assert many == few <= MAX_QUERIES[persona]


@pytest.mark.parametrize("persona", ["reader", "carol"])
def test_a_deep_keyset_page_costs_what_the_first_page_costs(
    request: pytest.FixtureRequest, alice: User, persona: str
) -> None:
    user: User = request.getfixturevalue(persona)
    staging = factories.make_environment("staging-eu", availability="staging")
    _add(60, environment=staging, by=alice)
    client = login(user)
    first, shown_first = _count(client, "/history/")
    newest = Deployment.objects.order_by("-created_at", "-id")[5]
    deep, shown_deep = _count(client, f"/history/?after={format_cursor(newest)}")
    assert (shown_first, shown_deep) == (50, 50)
    assert deep == first <= MAX_QUERIES[persona]
