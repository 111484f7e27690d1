"""A search's pages show exactly the matches the reader may view, newest first, each once,
however they are read (SQLite sorts a few matches' ids before reading their names): paged by
cursor through ties of created_at, filtered beside the search, and never a match of an
environment the reader may not view."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.models import Deployment, Service
from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(db: None) -> User:
    """May view every staging environment, nothing else."""
    user = factories.make_user("reader")
    grant(actor=None, user=user, verbs=[Verb.VIEW], availability="staging", note="reader")
    return user


@pytest.fixture
def staging(db: None) -> Environment:
    return factories.make_environment("staging-eu", availability="staging")


@pytest.fixture
def made(alice: User, checkout: Service, staging: Environment, production: Environment) -> None:
    """200 deployments, every other one with "ledger" in its commit message, in staging and in
    production, at 20 instants (ten deployments share each: the cursor must break the ties)."""
    start = timezone.now() - timedelta(days=1)
    for i in range(200):
        commit = "Reworks the ledger" if i % 2 == 0 else "Tidy"
        version = factories.make_version(checkout, commit_message=commit)
        deployment = factories.make_deployment(
            service=checkout,
            environment=staging if i % 3 else production,
            deployed_by=alice,
            version=version,
            status="FAILED" if i % 5 == 0 else "DONE",
        )
        Deployment.objects.filter(pk=deployment.pk).update(
            created_at=start + timedelta(minutes=i // 10)
        )


def _every_page(user: User, query: str) -> list[int]:
    client = login(user)
    shown: list[int] = []
    path = f"/history/?{query}"
    while True:
        response = client.get(path)
        assert response.status_code == 200
        shown += [row["pk"] for row in response.context["deployments"]]
        if not response.context["next_cursor"]:
            return shown
        path = f"/history/?{response.context['next_query']}"


def _expected(staging: Environment, **conditions: object) -> list[int]:
    rows = Deployment.objects.filter(
        environment=staging, version__commit_message__contains="ledger", **conditions
    )
    return list(rows.order_by("-created_at", "-id").values_list("pk", flat=True))


@pytest.mark.usefixtures("made")
def test_a_search_s_pages_show_every_viewable_match_once_newest_first(
    reader: User, staging: Environment
) -> None:
    expected = _expected(staging)
    assert len(expected) > 50  # more than a page: the cursor is used
    assert _every_page(reader, "q=ledger") == expected


@pytest.mark.usefixtures("made")
def test_a_search_s_pages_keep_the_filters_beside_it(reader: User, staging: Environment) -> None:
    expected = _expected(staging, status="DONE")
    assert _every_page(reader, "q=ledger&status=DONE") == expected
    assert _every_page(reader, "q=ledger&status=FAILED") == _expected(staging, status="FAILED")
