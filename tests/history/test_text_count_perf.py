"""SQLite: the History search counts a word's messages as whole words first, then as prefixes
only when the whole words are too few (history.text_search.messages_found): FTS5 merges the
lists of every word a prefix begins before its LIMIT, 6.6 ms for a word in every message at
100,000 deployments, 0.2 ms as a whole word (issue #16). The count is the prefixes' count, up
to the limit, either way."""

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.models import Service
from environments.models import Environment
from history.text_search import messages_found
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's FTS5 count"),
]


@pytest.fixture
def messages(alice: User, checkout: Service, production: Environment) -> None:
    for message in ("Fix the basket", "Fixes the basketball", "basket", "Tidy the ledger"):
        factories.make_deployment(
            service=checkout, environment=production, deployed_by=alice, message=message
        )


@pytest.mark.usefixtures("messages")
@pytest.mark.parametrize(
    ("text", "up_to", "count"),
    [
        ("basket", 10, 3),  # two whole words, three prefixes: the prefixes are counted
        ("basket", 2, 2),  # as many whole words as asked: enough
        ("bask", 10, 3),  # no whole word: the prefixes
        ("fix basket", 10, 2),  # every word, each a prefix
        ("the", 2, 2),
        ("nothing", 10, 0),
    ],
)
def test_a_search_counts_its_prefixes_up_to_the_limit_whole_words_first(
    text: str, up_to: int, count: int
) -> None:
    assert messages_found(text, connection, up_to=up_to) == count
