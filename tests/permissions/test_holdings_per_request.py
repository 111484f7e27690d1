"""A request reads the user's holdings once, shared by its visibility filter and the header's
Deploy link, and nothing is shared across requests: a grant revoked holds from the next request.
Outside a request (commands, direct calls) nothing is shared at all."""

import random
from collections import Counter

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from permissions.models import Grant
from permissions.selectors import holdings, reads_shared_for_one_request, visibility
from permissions.services import grant, revoke_grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

HOLDINGS_TABLE = "permissions_grantuserobjectpermission"


def _holdings_reads(client: object, path: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)  # type: ignore[attr-defined]
    assert response.status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if HOLDINGS_TABLE in q["sql"]]
    return len(reads), response.content.decode()


@pytest.mark.parametrize("path", ["/history/", "/status/", "/"])
def test_a_page_reads_bobs_holdings_once(bob: User, path: str) -> None:
    environment = factories.make_environment("staging-1", availability="staging")
    factories.make_deployment(
        service=factories.make_service("checkout"), environment=environment, deployed_by=bob
    )
    client = login(bob)
    reads, page = _holdings_reads(client, path)
    assert reads == 1
    assert 'href="/deploy/"' in page


def test_a_revoked_grant_holds_from_the_next_request(bob: User, alice: User) -> None:
    environment = factories.make_environment("staging-1", availability="staging")
    factories.make_deployment(
        service=factories.make_service("checkout"),
        environment=environment,
        deployed_by=bob,
        message="the checkout rollout",
    )
    client = login(bob)
    _, page = _holdings_reads(client, "/history/")
    assert "the checkout rollout" in page
    assert 'href="/deploy/"' in page

    for held in Grant.objects.filter(user_perms__user=bob).distinct():
        revoke_grant(actor=alice, grant=held)

    _, page = _holdings_reads(client, "/history/")
    assert "the checkout rollout" not in page
    assert 'href="/deploy/"' not in page


def test_nothing_is_shared_outside_a_request(bob: User, alice: User) -> None:
    environment = factories.make_environment("staging-1", availability="staging")
    assert environment.pk in visibility(bob).environment_ids
    for held in Grant.objects.filter(user_perms__user=bob).distinct():
        revoke_grant(actor=alice, grant=held)
    assert environment.pk not in visibility(bob).environment_ids


def test_nothing_is_shared_between_two_requests_in_a_row(bob: User, alice: User) -> None:
    environment = factories.make_environment("staging-1", availability="staging")
    with reads_shared_for_one_request():
        assert environment.pk in visibility(bob).environment_ids
    for held in Grant.objects.filter(user_perms__user=bob).distinct():
        revoke_grant(actor=alice, grant=held)
    with reads_shared_for_one_request():
        assert environment.pk not in visibility(bob).environment_ids


@pytest.mark.parametrize("seed", range(10))
def test_the_shared_read_gives_each_verb_the_holdings_of_its_own_query(
    seed: int, mallory: User
) -> None:
    rng = random.Random(seed)  # a fixed seed per case: the same grants on every run
    group = Group.objects.create(name="devs")
    mallory.groups.add(group)
    other = factories.make_user("other")
    service = factories.make_service("checkout")
    environment = factories.make_environment("staging-1", availability="staging")
    for _ in range(rng.randint(1, 8)):
        holder = rng.choice([{"user": mallory}, {"group": group}, {"user": other}])
        where = rng.choice(
            [{"service": service}, {"environment": environment}, {"availability": "staging"}]
        )
        verbs = rng.sample(list(Verb), rng.randint(1, 3))
        effect = Effect.DENY if rng.random() < 0.4 else Effect.ALLOW
        grant(actor=None, verbs=verbs, effect=effect, **holder, **where)  # type: ignore[arg-type]
    for verb in Verb:
        alone = Counter(holdings(verb=verb, user=mallory))
        with reads_shared_for_one_request():
            holdings(verb=Verb.DEPLOY, user=mallory)  # the read another question made first
            shared = Counter(holdings(verb=verb, user=mallory))
        assert shared == alone, (seed, verb)


def test_a_write_inside_the_request_drops_what_it_read(bob: User, alice: User) -> None:
    environment = factories.make_environment("staging-1", availability="staging")
    with reads_shared_for_one_request():
        before = holdings(verb=Verb.DEPLOY, user=bob)
        assert before
        for held in Grant.objects.filter(user_perms__user=bob).distinct():
            revoke_grant(actor=alice, grant=held)
        assert not holdings(verb=Verb.DEPLOY, user=bob)
        # A new grant, and a group bob joins, are seen at once too.
        team = Group.objects.create(name="deployers")
        grant(actor=None, group=team, verbs=[Verb.DEPLOY], environment=environment)
        assert not holdings(verb=Verb.DEPLOY, user=bob)
        bob.groups.add(team)
        assert holdings(verb=Verb.DEPLOY, user=bob)


def test_the_catalogue_is_read_unsorted(bob: User) -> None:
    # The rules use every service's id and every environment's availability as sets: sorting
    # them (the models' default order, by name) cost PostgreSQL more than reading them.
    factories.make_environment("staging-1", availability="staging")
    factories.make_service("checkout")
    with CaptureQueriesContext(connection) as queries:
        assert login(bob).get("/status/").status_code == 200
    catalogue = [
        q["sql"]
        for q in queries.captured_queries
        if " WHERE " not in q["sql"]
        and ' AS "pk"' in q["sql"]
        and (
            'FROM "deployments_service"' in q["sql"]
            or 'FROM "environments_environment"' in q["sql"]
        )
    ]
    assert catalogue
    assert not [sql for sql in catalogue if "ORDER BY" in sql]


def test_a_request_decides_what_bob_may_view_once(bob: User, alice: User) -> None:
    environment = factories.make_environment("staging-1", availability="staging")
    with reads_shared_for_one_request():
        first = visibility(bob)
        assert visibility(bob) is first
        # A write inside the request decides it again, from the database.
        for held in Grant.objects.filter(user_perms__user=bob).distinct():
            revoke_grant(actor=alice, grant=held)
        again = visibility(bob)
        assert again is not first
        assert environment.pk in first.environment_ids
        assert environment.pk not in again.environment_ids
    # Two requests never share it.
    with reads_shared_for_one_request():
        assert visibility(bob) is not visibility(alice)


def test_the_deploy_page_with_a_choice_decides_visibility_once(
    bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page's two forms, its service list and its environment list each ask: one answer.
    import permissions.selectors as selectors

    environment = factories.make_environment("staging-1", availability="staging")
    service = factories.make_service("checkout")
    decided: list[int] = []
    real = selectors._visibility_of

    def counted(user: User) -> selectors.Visibility:
        decided.append(user.pk)
        return real(user)

    monkeypatch.setattr(selectors, "_visibility_of", counted)
    page = login(bob).get(f"/deploy/?services={service.pk}&environments={environment.pk}")
    assert page.status_code == 200
    assert "checkout" in page.content.decode()
    assert decided == [bob.pk]
