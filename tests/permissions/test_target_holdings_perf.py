"""In a request, a question about one target (can, explain) takes the holdings covering it
from the request's read of the user's holdings of every verb, not from a query of its own:
the same holdings as the query (permissions.selectors.target_scope_q) for every scope, verb
and target, and a developer's deployment page reads the grants once."""

import itertools

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from permissions.rules import Target
from permissions.selectors import holdings, reads_shared_for_one_request
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _keys(user: User, verb: Verb, target: Target) -> set[tuple[int, str, str]]:
    return {
        (h.grant_id, h.holder_kind, h.effect) for h in holdings(verb=verb, user=user, target=target)
    }


def test_a_targets_holdings_are_the_same_from_the_requests_read_as_from_the_query() -> None:
    staging = factories.make_environment("staging-1", availability="staging")
    production = factories.make_environment("prod-1", availability="production")
    bare = factories.make_environment("bare-1", availability="")
    checkout, ledger = factories.make_service("checkout"), factories.make_service("ledger")
    dora, erin = factories.make_user("dora"), factories.make_user("erin")
    team = Group.objects.create(name="team")
    dora.groups.add(team)
    grant(
        actor=None,
        user=dora,
        verbs=[Verb.DEPLOY],
        effect=Effect.DENY,
        service=checkout,
        environment=staging,
    )
    grant(actor=None, user=dora, verbs=[Verb.DEPLOY, Verb.CANCEL], environment=staging)
    grant(actor=None, user=dora, verbs=[Verb.VIEW], service=checkout)
    grant(actor=None, user=dora, verbs=[Verb.DEPLOY], availability="production")
    grant(actor=None, user=dora, verbs=[Verb.VIEW], effect=Effect.DENY, environment=production)
    grant(actor=None, group=team, verbs=[Verb.VIEW, Verb.MANAGE], availability="staging")
    grant(actor=None, group=team, verbs=[Verb.EXEC], service=ledger, environment=bare)
    grant(actor=None, user=erin, verbs=[Verb.DEPLOY], environment=staging)  # not dora's
    services = [(checkout.pk, checkout.name), (ledger.pk, ledger.name), (None, "")]
    environments = [(e.pk, e.name, e.availability) for e in (staging, production, bare)]
    targets = [
        Target(s, s_name, e, e_name, availability)
        for (s, s_name), (e, e_name, availability) in itertools.product(
            services, [*environments, (None, "", "")]
        )
    ]
    compared = 0
    for verb, target in itertools.product(Verb, targets):
        queried = _keys(dora, verb, target)
        with reads_shared_for_one_request():
            assert _keys(dora, verb, target) == queried, (verb, target)
        compared += bool(queried)
    assert compared > 20  # most questions have holdings to compare


@pytest.mark.parametrize(("persona", "grant_reads"), [("alice", 0), ("dora", 1)])
def test_a_deployment_page_reads_the_grants_once_whatever_it_asks(
    persona: str, grant_reads: int, alice: User
) -> None:
    staging = factories.make_environment("staging-1", availability="staging")
    checkout = factories.make_service("checkout")
    deployment = factories.make_deployment(service=checkout, environment=staging, deployed_by=alice)
    dora = factories.make_user("dora")
    grant(actor=None, user=dora, verbs=[Verb.VIEW, Verb.DEPLOY, Verb.CANCEL], environment=staging)
    user = alice if persona == "alice" else dora
    with CaptureQueriesContext(connection) as captured:
        page = login(user).get(f"/deployments/{deployment.pk}/")
    assert page.status_code == 200
    reads = [
        q for q in captured.captured_queries if "permissions_grantuserobjectpermission" in q["sql"]
    ]
    assert len(reads) == grant_reads, [q["sql"][:120] for q in reads]
