"""The holdings read every developer's page makes (a user's holdings of every verb) names the
scope's service and environment by a subquery each and the grant type by its content type's
id: no join of services, environments or content types for PostgreSQL to plan on every page
(1.6 -> 0.5 ms of planning at the board bench's developer). The rows read are the same."""

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from permissions.rules import Holding
from permissions.selectors import holdings, reads_shared_for_one_request
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

HOLDINGS_TABLE = "permissions_grantuserobjectpermission"


def test_bobs_page_reads_his_holdings_without_joining_services_environments_or_types(
    bob: User,
) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert login(bob).get("/status/").status_code == 200
    (read,) = [q["sql"] for q in queries.captured_queries if HOLDINGS_TABLE in q["sql"]]
    for table in ("deployments_service", "environments_environment", "django_content_type"):
        assert f'JOIN "{table}"' not in read


def test_the_holdings_read_names_each_scope_as_the_joined_read_did(bob: User) -> None:
    checkout = factories.make_service("checkout")
    staging = factories.make_environment("staging-1", availability="staging")
    team = Group.objects.create(name="payments")
    bob.groups.add(team)
    grant(actor=None, user=bob, verbs=[Verb.DEPLOY], service=checkout, environment=staging)
    grant(actor=None, group=team, verbs=[Verb.VIEW], effect=Effect.DENY, environment=staging)
    grant(actor=None, user=bob, verbs=[Verb.RESTART], service=checkout)

    def read(verb: Verb) -> list[Holding]:
        return sorted(holdings(verb=verb, user=bob), key=lambda h: h.grant_id)

    # Outside a request holdings() reads the verb's own query (names joined), inside a request
    # the every-verb read under test: both must give the same rows.
    for verb in (Verb.VIEW, Verb.DEPLOY, Verb.RESTART):
        with reads_shared_for_one_request():
            shared = read(verb)
        assert shared == read(verb)
    with reads_shared_for_one_request():
        named = {(h.service_name, h.environment_name, h.holder_name) for h in read(Verb.VIEW)}
    assert ("checkout", "staging-1", "bob") in named  # deploy's ALLOW is a view ALLOW (rule 6)
    assert (None, "staging-1", "payments") in named
    assert ("checkout", None, "bob") in named
