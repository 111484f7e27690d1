"""What the search-statement tests (test_search_ids_statement.py on SQLite,
test_pg_search_ids_statement.py on PostgreSQL) read: deployments whose messages, commits,
branches, deployers and sha a search may match, and Django's lookups for a text, which each
database's fixed statement must match exactly."""

from django.contrib.auth.models import User
from django.db.models import Q

from deployments.models import DeployableVersion, Service
from environments.models import Environment
from history.text_search import matching_deployments
from tests import factories

SHA = "abcdef" + "0" * 34

# (text, whether it may be a sha prefix): words, prefixes, LIKE's wildcards, a backslash, shas,
# no word at all, nothing found.
TEXTS = [
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
]


def make_searchable(alice: User, checkout: Service, production: Environment) -> None:
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


def lookup_conditions(text: str, vendor: str, *, sha_prefix: bool) -> list[Q]:
    """Django's conditions of a search for `text`: the full-text ones, a deployer's name
    containing it and, when it may be one, a sha starting with it."""
    conditions = matching_deployments(text, vendor)
    conditions.append(Q(deployed_by__username__icontains=text))
    if sha_prefix:
        shas = DeployableVersion.objects.filter(git_commit_sha__startswith=text.lower())
        conditions.append(Q(version_id__in=shas.values("pk")))
    return conditions
