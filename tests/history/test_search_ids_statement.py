"""SQLite: a search's ids are read by one fixed statement (history.text_search.matching_ids)
rather than a union of querysets compiled each request (issue #16: 1.9 ms of Python for 0.2 ms
of SQLite). It reads exactly what Django's lookups read: the full-text conditions of
matching_deployments, a user name containing the text (icontains, with % _ and \\ taken
literally) and a sha starting with it; counted up to the limit."""

import json
import operator
from functools import reduce

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.models import Deployment, Service
from environments.models import Environment
from history.text_search import matching_ids
from tests.history.searchable import TEXTS, lookup_conditions, make_searchable

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's statement of ids"),
]


@pytest.fixture
def made(alice: User, checkout: Service, production: Environment) -> None:
    make_searchable(alice, checkout, production)


def _django_reads(text: str, *, sha_prefix: bool) -> set[int]:
    conditions = lookup_conditions(text, "sqlite", sha_prefix=sha_prefix)
    return set(
        Deployment.objects.filter(reduce(operator.or_, conditions)).values_list("pk", flat=True)
    )


@pytest.mark.usefixtures("made")
@pytest.mark.parametrize(("text", "sha_prefix"), TEXTS)
def test_the_statement_reads_what_djangos_lookups_read(text: str, sha_prefix: bool) -> None:
    count, ids = matching_ids(text, connection, sha_prefix=sha_prefix, up_to=100)
    expected = _django_reads(text, sha_prefix=sha_prefix)
    assert sorted(json.loads(ids)) == sorted(expected)
    assert count == len(expected)


@pytest.mark.usefixtures("made")
def test_the_statement_counts_no_further_than_its_limit() -> None:
    count, ids = matching_ids("e", connection, sha_prefix=False, up_to=2)  # every user name
    assert count == 2
    assert len(json.loads(ids)) == 2
