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
from django.db.models import Q

from deployments.models import DeployableVersion, Deployment, Service
from environments.models import Environment
from history.text_search import matching_deployments, matching_ids
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's statement of ids"),
]

SHA = "abcdef" + "0" * 34


@pytest.fixture
def made(alice: User, checkout: Service, production: Environment) -> None:
    odd = factories.make_user("dev_ops%1")  # a name with LIKE's wildcards in it
    slash = factories.make_user("back\\slash")
    for user, message, commit, branch, sha in (
        (alice, "Fix the basket", "Faster search", "feature/speed", SHA),
        (odd, "Tidy the ledger", "Reworks the ledger", "main", None),
        (slash, "deployment 7", "Commit 7", "release-7", None),
        (alice, "hotfix", "", "", None),
    ):
        version = factories.make_version(checkout, sha, commit_message=commit, branch=branch)
        factories.make_deployment(
            service=checkout,
            environment=production,
            deployed_by=user,
            version=version,
            message=message,
        )


def _django_reads(text: str, *, sha_prefix: bool) -> set[int]:
    conditions = matching_deployments(text, "sqlite")
    conditions.append(Q(deployed_by__username__icontains=text))
    if sha_prefix:
        shas = DeployableVersion.objects.filter(git_commit_sha__startswith=text.lower())
        conditions.append(Q(version_id__in=shas.values("pk")))
    return set(
        Deployment.objects.filter(reduce(operator.or_, conditions)).values_list("pk", flat=True)
    )


@pytest.mark.usefixtures("made")
@pytest.mark.parametrize(
    ("text", "sha_prefix"),
    [
        ("basket", False),
        ("bask", False),
        ("feature/speed", False),
        ("the ledger", False),
        ("ali", False),  # a user name
        ("dev_ops", False),
        ("v_o", False),
        ("%", False),
        ("s%1", False),
        ("_", False),
        ("k\\s", False),
        ("abcd", True),
        ("ABCDEF", True),
        ("abcf", True),
        ("!!", False),  # no word: the user names only
        ("nothing", False),
    ],
)
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
