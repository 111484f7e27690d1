"""A History search with few matches reads their ids once, from the full-text indexes united,
and the page's rows query names them in one parameter (history.text_search.AmongIds): a JSON
array through json_each on SQLite, an array on PostgreSQL. On SQLite the union was read as a
count, then again inside the rows query; on PostgreSQL the ids were a list of 1,050
placeholders that Django and psycopg processed one by one (issue #16). The ids are read before
visibility: the rows query alone decides what the reader sees."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Service
from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

# How each database's rows query names the ids.
AMONG = {
    "sqlite": "IN (SELECT value FROM json_each(",
    # Typed as the id column: bigint = ANY(integer[]) is not hashed (a slower plan).
    "postgresql": "::bigint[])",
}


@pytest.fixture
def shown(alice: User, checkout: Service, production: Environment) -> list[str]:
    """Deployments of a commit about the ledger, in staging (viewable) and production (not)."""
    staging = factories.make_environment("staging-eu", availability="staging")
    version = factories.make_version(checkout, commit_message="Reworks the ledger")
    for environment, message in ((staging, "seen"), (production, "hidden")):
        for i in range(3):
            factories.make_deployment(
                service=checkout,
                environment=environment,
                deployed_by=alice,
                version=version,
                message=f"{message} {i}",
            )
    return ["seen 2", "seen 1", "seen 0"]


@pytest.fixture
def reader(db: None) -> User:
    user = factories.make_user("reader")
    grant(actor=None, user=user, verbs=[Verb.VIEW], availability="staging", note="reader")
    return user


@pytest.mark.parametrize("text", ["ledger", "seen", "hidden", "reader"])
def test_a_search_reads_its_matches_once_and_shows_only_what_the_reader_may_view(
    reader: User, shown: list[str], text: str
) -> None:
    client = login(reader)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/history/", {"q": text})
    assert response.status_code == 200
    messages = [row["message"] for row in response.context["deployments"]]
    assert messages == {"ledger": shown, "seen": shown}.get(text, [])
    reads = [q["sql"] for q in queries if 'FROM "deployments_deployment"' in q["sql"]]
    unions = [sql for sql in reads if " UNION " in sql]
    page = [sql for sql in reads if 'AS "deployed_by_name"' in sql]
    assert len(unions) == 1, unions
    assert len(page) == 1, page
    assert AMONG[connection.vendor] in page[0]
    assert " UNION " not in page[0]
