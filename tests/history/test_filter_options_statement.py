"""The History filter form reads its options and the user it filters by in one statement: the
user filter costs the page no query of its own (issue #16: on PostgreSQL every statement is a
round trip, a parse and a plan). A name it cannot use is still refused with a clear message."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _queries(user: User, path: str) -> tuple[list[str], str]:
    client = login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return [q["sql"] for q in queries], response.content.decode()


@pytest.fixture
def deployed(alice: User, bob: User, production: Environment) -> Environment:
    checkout = factories.make_service("checkout")
    factories.make_deployment(
        service=checkout, environment=production, deployed_by=alice, message="by-alice"
    )
    factories.make_deployment(
        service=checkout, environment=production, deployed_by=bob, message="by-bob"
    )
    return production


@pytest.mark.parametrize("persona", ["alice", "carol", "bob"])
def test_filtering_by_environment_and_user_costs_no_query_more_than_the_first_page(
    request: pytest.FixtureRequest, deployed: Environment, persona: str
) -> None:
    reader: User = request.getfixturevalue(persona)
    first, _ = _queries(reader, "/history/")
    filtered, html = _queries(reader, f"/history/?environment={deployed.name}&user=bob")

    assert "by-bob" in html
    assert "by-alice" not in html
    assert len(filtered) == len(first)


def test_the_options_and_the_user_are_read_in_one_statement(
    carol: User, deployed: Environment
) -> None:
    sql, _ = _queries(carol, f"/history/?environment={deployed.name}&user=bob")

    reads = [s for s in sql if '"environments_environment"."name"' in s and "UNION" in s]
    assert len(reads) == 1
    assert '"deployments_service"."name"' in reads[0]
    by_name = [s for s in sql if '"auth_user"."username" = ' in s]
    assert by_name == reads


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nobody", "No user is called &#x27;nobody&#x27;."),
        ("x" * 151, "Ensure this value has at most 150 characters (it has 151)."),
    ],
)
def test_a_user_it_cannot_filter_by_is_refused_with_a_clear_message(
    carol: User, deployed: Environment, name: str, message: str
) -> None:
    _, html = _queries(carol, f"/history/?user={name}")

    assert message in html
    assert "by-bob" not in html
    assert "by-alice" not in html


def test_the_name_is_matched_exactly_as_the_form_cleans_it(
    carol: User, deployed: Environment
) -> None:
    _, padded = _queries(carol, "/history/?user=%20bob%20")
    _, other_case = _queries(carol, "/history/?user=BOB")

    assert "by-bob" in padded
    assert "by-alice" not in padded
    assert "No user is called &#x27;BOB&#x27;." in other_case
