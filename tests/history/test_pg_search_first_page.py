"""PostgreSQL: a rare word's first History page is read from the ids of its newest matches
only (deployments.selectors.FIRST_PAGE_MATCHES, from pg_matching_ids' statement), when the
search is the only filter and the reader may view every service in every environment: 60 rows
by primary key rather than every match (issue #16: a commit word's 1,050 matches made the page's
statement walk 4,836 rows). The page and the pages after it are the ones every match gives; a
reader who may view less, another filter or a later page reads every match, as before; a page
short of rows (a match deleted meanwhile) is read again from every match. On SQLite (FTS5, its
own plan) it is skipped."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment, Service
from deployments.selectors import HistoryFilters, history_page, parse_cursor
from environments.models import Environment
from history.text_search import pg_matching_ids
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's search"),
]

NEWEST = 5  # FIRST_PAGE_MATCHES for these tests
SIZE = 3  # the page size


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging-1", availability="staging")


@pytest.fixture
def matches(
    alice: User, checkout: Service, production: Environment, staging: Environment
) -> list[int]:
    """12 deployments saying "hotfix" among 24, in both environments: their ids, newest first."""
    found = []
    for i in range(24):
        d = factories.make_deployment(
            service=checkout,
            environment=production if i % 3 else staging,
            deployed_by=alice,
            message=f"hotfix {i}" if i % 2 else f"deployment {i}",
        )
        if i % 2:
            found.append(d.pk)
    return found[::-1]


@pytest.fixture
def newest(monkeypatch: Any) -> None:
    monkeypatch.setattr("deployments.selectors.FIRST_PAGE_MATCHES", NEWEST)
    monkeypatch.setattr("deployments.selectors.PROBE", 10**6)  # 12 of 24: rare among all


def _pages(user: User, filters: HistoryFilters) -> list[list[int]]:
    """Every page of the search, in order, as ids."""
    pages, cursor = [], None
    while True:
        rows, after = history_page(filters, cursor, SIZE, user=user)
        pages.append([row["pk"] for row in rows])
        if not after:
            return pages
        cursor = parse_cursor(after)
        assert cursor is not None, after


def _page_arrays(user: User, filters: HistoryFilters) -> list[int]:
    """How many ids the first page's statement read its rows among (the array it was given)."""
    with CaptureQueriesContext(connection) as queries:
        history_page(filters, None, SIZE, user=user)
    return [
        sql.split("= ANY('{", 1)[1].split("}", 1)[0].count(",") + 1
        for sql in (q["sql"] for q in queries.captured_queries)
        if 'AS "deployed_by_name"' in sql and "= ANY('{" in sql
    ]


@pytest.mark.usefixtures("newest")
def test_the_first_page_is_read_from_the_newest_matches_and_every_page_is_the_same(
    alice: User, matches: list[int], monkeypatch: Any
) -> None:
    search = HistoryFilters(text="hotfix")
    assert _page_arrays(alice, search) == [NEWEST]  # one statement, the newest ids only
    pages = _pages(alice, search)
    assert [pk for page in pages for pk in page] == matches
    assert pages[0] == matches[:SIZE]
    # Without the newest ids (more of them asked for than there are matches): the same pages.
    monkeypatch.setattr("deployments.selectors.FIRST_PAGE_MATCHES", 100)
    assert _page_arrays(alice, search) == [len(matches)]
    assert _pages(alice, search) == pages


@pytest.mark.usefixtures("newest")
def test_the_statement_gives_the_ids_of_the_newest_matches(matches: list[int]) -> None:
    read = pg_matching_ids(
        "hotfix", connection, sha_prefix=False, probe=10**6, up_to=100, newest=NEWEST
    )
    assert read.found == len(matches)
    assert sorted(int(pk) for pk in read.newest.strip("{}").split(",")) == sorted(matches[:NEWEST])
    assert pg_matching_ids("hotfix", connection, sha_prefix=False, probe=10**6, up_to=100)[3] == (
        "{}"
    )


def _reads_every_match_and_shows_staging_only(
    user: User, search: HistoryFilters, matches: list[int], staging: Environment
) -> None:
    assert _page_arrays(user, search) == [len(matches)]
    in_staging = set(Deployment.objects.filter(environment=staging).values_list("pk", flat=True))
    shown = [pk for page in _pages(user, search) for pk in page]
    assert shown == [pk for pk in matches if pk in in_staging]


@pytest.mark.usefixtures("newest")
def test_a_reader_who_may_view_less_reads_every_match_and_sees_only_hers(
    matches: list[int], staging: Environment
) -> None:
    reader = factories.make_user("dana")
    grant(actor=None, user=reader, verbs=[Verb.VIEW], environment=staging)
    search = HistoryFilters(text="hotfix")
    _reads_every_match_and_shows_staging_only(reader, search, matches, staging)


@pytest.mark.usefixtures("newest")
def test_another_filter_reads_every_match(
    alice: User, matches: list[int], staging: Environment
) -> None:
    search = HistoryFilters(text="hotfix", environment=staging)
    _reads_every_match_and_shows_staging_only(alice, search, matches, staging)


@pytest.mark.usefixtures("newest")
def test_a_page_left_short_is_read_again_from_every_match(
    alice: User, matches: list[int], monkeypatch: Any
) -> None:
    """A match deleted between the statement of ids and the page: the newest ids give a page
    without its one row more, so every match is read."""
    monkeypatch.setattr("deployments.selectors.FIRST_PAGE_MATCHES", SIZE + 1)

    def delete_the_newest(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if sql.startswith("WITH probe"):
            Deployment.objects.filter(pk=matches[0]).delete()
        return result

    with (
        CaptureQueriesContext(connection) as queries,
        connection.execute_wrapper(delete_the_newest),
    ):
        rows, after = history_page(HistoryFilters(text="hotfix"), None, SIZE, user=alice)
    assert [row["pk"] for row in rows] == matches[1 : SIZE + 1]
    assert after
    pages = [q["sql"] for q in queries.captured_queries if 'AS "deployed_by_name"' in q["sql"]]
    assert len(pages) == 2  # the newest ids, then every match
