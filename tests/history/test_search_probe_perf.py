"""On PostgreSQL a search first tests the newest deployments row by row (deployments.selectors
PROBE): a word in most of them is searched by walking the newest-first index, without reading
the GIN index's matches (issue #16: 11 ms for a word in every message at 100,000 deployments).
That probe only picks the plan: the page is the same, and shows only what its reader may view.
On SQLite (FTS5, its own count) it is skipped."""

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.models import Service
from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's search plans"),
]


def _shown(user: User, query: str) -> list[int]:
    page = login(user).get("/history/", {"q": query}).content.decode()
    return [int(pk) for pk in re.findall(r'href="/deployments/(\d+)/"', page)]


def test_a_word_found_by_the_probe_gives_the_page_the_index_gives_and_nothing_unseen(
    alice: User, checkout: Service, production: Environment, monkeypatch: Any
) -> None:
    staging = factories.make_environment("staging")
    reader = factories.make_user("dana")
    grant(actor=None, user=reader, verbs=[Verb.VIEW], environment=staging)
    seen = set()
    for i in range(60):
        environment = staging if i % 3 == 0 else production
        d = factories.make_deployment(
            service=checkout,
            environment=environment,
            deployed_by=alice,
            message=f"deployment {i}" if i % 4 else f"rollout {i}",
        )
        if environment == staging and i % 4:
            seen.add(d.pk)
    monkeypatch.setattr("deployments.selectors.PROBE", 10**6)  # the index's matches
    by_index = _shown(reader, "deployment")
    monkeypatch.setattr("deployments.selectors.PROBE", 8)  # 6 of the newest 8: a common word
    by_walk = _shown(reader, "deployment")
    assert by_walk == by_index
    assert set(by_walk) == seen
    assert by_walk == sorted(by_walk, reverse=True)
