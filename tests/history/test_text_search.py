"""History's word search goes through a full-text index (history.text_search: FTS5 on SQLite,
GIN on PostgreSQL): words of the deployment's message, the commit's message and its branch,
each a prefix, all required; the index follows inserts and edits, and is repaired after a
migration that rebuilt a table and dropped its triggers."""

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.models import Deployment, Service
from environments.models import Environment
from history.text_search import ensure_schema
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _found(user: User, query: str) -> list[int]:
    response = login(user).get("/history/", {"q": query})
    assert response.status_code == 200
    return [d["pk"] for d in response.context["deployments"]]


def _deploy(alice: User, service: Service, environment: Environment, **extra: str) -> Deployment:
    version = factories.make_version(
        service,
        commit_message=extra.pop("commit_message", ""),
        branch=extra.pop("branch", "main"),
    )
    return factories.make_deployment(
        service=service, environment=environment, deployed_by=alice, version=version, **extra
    )


def test_every_word_is_a_required_prefix_of_one_of_the_messages(
    alice: User, checkout: Service, production: Environment
) -> None:
    both = _deploy(alice, checkout, production, message="Hotfix", commit_message="Rework ledger")
    one = _deploy(alice, checkout, production, message="Hotfix", commit_message="Tidy")
    assert _found(alice, "hotfix") == [one.pk, both.pk]
    assert _found(alice, "rew ledg") == [both.pk]
    assert _found(alice, "hotfix ledger") == []  # all the words in one of the two texts
    assert _found(alice, "LEDGER") == [both.pk]
    assert _found(alice, "edger") == []  # words, not substrings inside a word


def test_an_edited_message_is_found_by_its_new_words_only(
    alice: User, checkout: Service, production: Environment
) -> None:
    deployment = _deploy(alice, checkout, production, message="first words")
    Deployment.objects.filter(pk=deployment.pk).update(message="second thoughts")
    assert _found(alice, "first") == []
    assert _found(alice, "thoughts") == [deployment.pk]


def test_punctuation_only_finds_nothing_and_changes_nothing(
    alice: User, checkout: Service, production: Environment
) -> None:
    _deploy(alice, checkout, production, message="anything")
    assert _found(alice, '"*()') == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's triggers (FTS5)")
def test_the_index_is_repaired_after_a_table_rebuild_dropped_its_triggers(
    alice: User, checkout: Service, production: Environment
) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER history_deployment_text_ai")
    missed = _deploy(alice, checkout, production, message="written while unindexed")
    assert _found(alice, "unindexed") == []
    ensure_schema(connection)  # what every migrate runs (history.apps)
    assert _found(alice, "unindexed") == [missed.pk]
    later = _deploy(alice, checkout, production, message="unindexed no more")
    assert _found(alice, "unindexed") == [later.pk, missed.pk]


@pytest.mark.parametrize("dense", [2, 4000])
def test_a_common_word_and_a_rare_one_find_the_same_rows_whichever_plan(
    alice: User,
    checkout: Service,
    production: Environment,
    dense: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DENSE chooses the plan (deployments.selectors): 2 makes every search here "common".
    monkeypatch.setattr("deployments.selectors.DENSE", dense)
    by_message = _deploy(alice, checkout, production, message="Hotfix for the basket")
    by_commit = _deploy(alice, checkout, production, commit_message="basket_total hotfixes")
    by_branch = _deploy(alice, checkout, production, branch="hotfix/basket")
    _deploy(alice, checkout, production, message="a photfix is no hotfix-word start", branch="x")
    found = _found(alice, "hotfix basket")
    assert found == [by_branch.pk, by_commit.pk, by_message.pk]
    assert _found(alice, "asket") == []
