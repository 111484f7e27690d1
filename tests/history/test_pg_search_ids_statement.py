"""PostgreSQL: a search's probe and its ids are one fixed statement
(history.text_search.pg_matching_ids) rather than two statements built from querysets (issue
#16: a round trip and the compilation saved, the ids no longer read back as Python ints). It
reads exactly what Django's lookups read: the full-text conditions of matching_deployments, a
user name containing the text (icontains, with % _ and \\ taken literally) and a sha starting
with it; the probe counts the matches among the newest deployments, and the ids are read only
when the probe finds the word rare. Without a sha it is kept prepared on the connection (its
plan is the same whatever the words); with one it is planned for each value, as Django's own
statements are. On SQLite (history.text_search.matching_ids) it is skipped."""

import json
import operator
from functools import reduce

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment, Service
from environments.models import Environment
from history.text_search import pg_matching_ids
from tests.conftest import login, prepared_statements_off
from tests.history.searchable import TEXTS, lookup_conditions, make_searchable

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statement of ids"),
]


@pytest.fixture
def made(alice: User, checkout: Service, production: Environment) -> None:
    make_searchable(alice, checkout, production)


def _conditions(text: str, *, sha_prefix: bool) -> list[Q]:
    return lookup_conditions(text, "postgresql", sha_prefix=sha_prefix)


def _django_reads(text: str, *, sha_prefix: bool) -> list[int]:
    """Each way's matches, a row once per way it matches (UNION ALL)."""
    return [
        pk
        for condition in _conditions(text, sha_prefix=sha_prefix)
        for pk in Deployment.objects.filter(condition).values_list("pk", flat=True)
    ]


@pytest.mark.usefixtures("made")
@pytest.mark.parametrize(("text", "sha_prefix"), TEXTS)
def test_the_statement_reads_what_djangos_lookups_read(text: str, sha_prefix: bool) -> None:
    expected = _django_reads(text, sha_prefix=sha_prefix)
    anywhere = reduce(operator.or_, _conditions(text, sha_prefix=sha_prefix))
    among_newest = Deployment.objects.filter(anywhere).count()  # the newest 10**6: all of them
    probed, found, ids, _ = pg_matching_ids(
        text, connection, sha_prefix=sha_prefix, probe=10**6, up_to=100
    )
    assert probed == among_newest
    assert found == len(expected)
    assert json.loads(ids.replace("{", "[").replace("}", "]")) == sorted(set(expected))


@pytest.mark.usefixtures("made")
def test_the_probe_counts_the_newest_only_and_a_common_word_reads_no_ids() -> None:
    newest = Deployment.objects.order_by("-created_at", "-id")[:2]
    by_alice = [d for d in newest if d.deployed_by.username == "alice"]
    probed, found, ids, _ = pg_matching_ids(
        "alice", connection, sha_prefix=False, probe=2, up_to=100
    )
    assert probed == len(by_alice) == 1  # "hotfix" by alice, "deployment 7" by back\slash
    assert (found, ids) == (0, "{}")  # a quarter of the newest match: no ids read


@pytest.mark.usefixtures("made")
def test_the_probe_counts_no_further_than_a_quarter_of_the_newest() -> None:
    """Three of the four deployments match "e" (a user name): a common word is known as soon
    as a quarter of the newest match, without testing the rest of them."""
    assert pg_matching_ids("e", connection, sha_prefix=False, probe=4, up_to=100)[:3] == (
        1,
        0,
        "{}",
    )
    assert pg_matching_ids("e", connection, sha_prefix=False, probe=7, up_to=100)[:3] == (
        2,
        0,
        "{}",
    )
    probed, found, *_ = pg_matching_ids("e", connection, sha_prefix=False, probe=16, up_to=100)
    assert (probed, found) == (3, 3)  # fewer than a quarter of 16: rare, the ids are read


@pytest.mark.usefixtures("made")
def test_the_statement_counts_no_further_than_its_limit() -> None:
    probed, found, ids, _ = pg_matching_ids("e", connection, sha_prefix=False, probe=10**6, up_to=2)
    assert probed == 3  # deployed by alice (twice) and dev_ops%1: an e in the name
    assert found == 2
    assert len(ids.strip("{}").split(",")) == 2


@pytest.mark.usefixtures("made")
def test_a_rare_word_costs_one_statement_more_than_the_page_without_a_search(alice: User) -> None:
    """The probe and the ids were two statements before pg_matching_ids."""
    client = login(alice)
    with CaptureQueriesContext(connection) as plain:
        assert client.get("/history/").status_code == 200
    with CaptureQueriesContext(connection) as searched:
        response = client.get("/history/", {"q": "ledger"})
    assert response.status_code == 200
    assert len(response.context["deployments"]) == 1
    assert len(searched) == len(plain) + 1


def _prepared_searches() -> list[tuple[str, int]]:
    """The search statements this connection keeps prepared, with how often each ran."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements"
            " WHERE NOT from_sql"
        )
        return [(sql, runs) for sql, runs in cursor.fetchall() if sql.startswith("WITH probe")]


RUNS = 7


@pytest.mark.usefixtures("made")
def test_a_word_search_is_prepared_once_and_reused_and_a_sha_search_is_not(alice: User) -> None:
    client = login(alice)
    words = ["basket", "the ledger", "bask", "nothing", "feature/speed", "ledger", "speed"]
    assert len(words) == RUNS
    for text in words:  # any words, any number of them: one statement
        assert client.get("/history/", {"q": text}).status_code == 200
    prepared = _prepared_searches()
    assert [runs for _, runs in prepared] == [RUNS]
    assert "LIKE" in prepared[0][0]  # (the user name's way, with the words' ways)
    for _ in range(3):
        response = client.get("/history/", {"q": "abcd"})  # a sha prefix
        assert response.status_code == 200
        assert len(response.context["deployments"]) == 1
    assert _prepared_searches() == prepared  # the sha's statement was not prepared


@pytest.mark.usefixtures("made")
@pytest.mark.parametrize(("text", "sha_prefix"), TEXTS)
def test_with_prepared_statements_off_the_statement_reads_the_same(
    text: str, sha_prefix: bool
) -> None:
    for _ in range(RUNS):  # past the runs after which PostgreSQL may keep its generic plan
        prepared = pg_matching_ids(
            text, connection, sha_prefix=sha_prefix, probe=2, up_to=100, newest=2
        )
    with prepared_statements_off():
        plain = pg_matching_ids(
            text, connection, sha_prefix=sha_prefix, probe=2, up_to=100, newest=2
        )
    assert plain == prepared
