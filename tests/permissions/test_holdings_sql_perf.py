"""The holdings of every verb are read by SQL compiled once per process
(permissions.selectors._every_verb_sql) with each reader's id bound: two users read one after
the other, inside requests and outside, each get their own grants and their own groups' grants,
never the first reader's, with the names of their scopes."""

import pytest
from django.contrib.auth.models import Group, User

from permissions.selectors import holdings, reads_shared_for_one_request
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _scopes(user: User, verb: Verb) -> set[tuple[str, str | None, str | None, str, str]]:
    return {
        (h.effect, h.service_name, h.environment_name, h.holder_kind, h.holder_name)
        for h in holdings(verb=verb, user=user)
    }


def test_each_reader_gets_their_own_and_their_groups_holdings(carol: User) -> None:
    staging = factories.make_environment("staging-1", availability="staging")
    checkout = factories.make_service("checkout")
    dora, erin = factories.make_user("dora"), factories.make_user("erin")
    readers = Group.objects.create(name="readers")
    erin.groups.add(readers)
    grant(actor=None, user=dora, verbs=[Verb.DEPLOY], environment=staging)
    grant(actor=None, user=erin, verbs=[Verb.DEPLOY], effect=Effect.DENY, service=checkout)
    grant(actor=None, group=readers, verbs=[Verb.VIEW], availability="staging")
    dora_sees = {("ALLOW", None, "staging-1", "user", "dora")}
    erin_sees = {("DENY", "checkout", None, "user", "erin")}
    for _ in range(2):  # outside a request, then inside one (the shared read of every verb)
        assert _scopes(dora, Verb.DEPLOY) == dora_sees
        assert _scopes(erin, Verb.DEPLOY) == erin_sees
        assert _scopes(erin, Verb.VIEW) == {("ALLOW", None, None, "group", "readers")}
        assert _scopes(carol, Verb.DEPLOY) == set()
        with reads_shared_for_one_request():
            assert _scopes(dora, Verb.DEPLOY) == dora_sees
        with reads_shared_for_one_request():
            assert _scopes(erin, Verb.DEPLOY) == erin_sees
            assert _scopes(erin, Verb.VIEW) == {("ALLOW", None, None, "group", "readers")}


def test_two_developers_pages_each_show_what_their_own_grants_allow(alice: User) -> None:
    staging = factories.make_environment("staging-1", availability="staging")
    production = factories.make_environment("prod-1", availability="production")
    for name, environment in (("api", staging), ("web", production)):
        service = factories.make_service(name)
        factories.make_deployment(service=service, environment=environment, deployed_by=alice)
    dora, erin = factories.make_user("dora"), factories.make_user("erin")
    grant(actor=None, user=dora, verbs=[Verb.VIEW], environment=staging)
    grant(actor=None, user=erin, verbs=[Verb.VIEW], environment=production)
    for user, shown, hidden in ((dora, "staging-1", "prod-1"), (erin, "prod-1", "staging-1")) * 2:
        board = login(user).get("/status/").context["board"]
        assert [e.name for e in board.environments] == [shown], hidden
