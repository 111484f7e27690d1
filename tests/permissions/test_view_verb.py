"""The `view` verb (permissions.rules, rule 6): its scopes, DENY beating ALLOW, what implies it,
and the set-based selectors that filter the lists in a constant number of queries."""

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Service
from environments.models import Environment
from permissions.selectors import visibility
from permissions.services import can, grant
from permissions.verbs import IMPLIES_VIEW, Effect, Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing() -> Service:
    return factories.make_service("billing")


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging-eu", availability="staging")


@pytest.fixture
def production() -> Environment:
    return factories.make_environment("production-eu", availability="production")


@pytest.mark.parametrize("verb", IMPLIES_VIEW)
def test_every_other_verb_allowed_implies_view_at_the_same_scope_only(
    mallory: User,
    verb: Verb,
    checkout: Service,
    billing: Service,
    staging: Environment,
    production: Environment,
) -> None:
    grant(actor=None, user=mallory, verbs=[verb], service=checkout, environment=staging)
    assert can(mallory, Verb.VIEW, service=checkout, environment=staging)
    assert not can(mallory, Verb.VIEW, service=checkout, environment=production)
    assert not can(mallory, Verb.VIEW, service=billing, environment=staging)


def test_view_does_not_imply_any_other_verb(
    mallory: User, checkout: Service, staging: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.VIEW], environment=staging)
    assert can(mallory, Verb.VIEW, service=checkout, environment=staging)
    for verb in IMPLIES_VIEW:
        assert not can(mallory, verb, service=checkout, environment=staging)


def test_a_deny_of_deploy_does_not_hide_what_a_view_grant_shows(
    mallory: User, checkout: Service, production: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.VIEW], availability="production")
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], effect=Effect.DENY, environment=production)
    assert can(mallory, Verb.VIEW, service=checkout, environment=production)
    assert not can(mallory, Verb.DEPLOY, service=checkout, environment=production)


def test_a_deny_of_view_on_an_environment_beats_a_deploy_allow_on_its_availability(
    mallory: User, checkout: Service, production: Environment
) -> None:
    other = factories.make_environment("production-us", availability="production")
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], availability="production")
    grant(actor=None, user=mallory, verbs=[Verb.VIEW], effect=Effect.DENY, environment=production)
    assert not can(mallory, Verb.VIEW, service=checkout, environment=production)
    assert can(mallory, Verb.VIEW, service=checkout, environment=other)


def test_a_group_deny_of_view_beats_a_user_allow_at_the_same_scope(
    mallory: User, checkout: Service, staging: Environment
) -> None:
    developers = Group.objects.create(name="developers")
    mallory.groups.add(developers)
    grant(actor=None, user=mallory, verbs=[Verb.VIEW], environment=staging)
    grant(actor=None, group=developers, verbs=[Verb.VIEW], effect=Effect.DENY, environment=staging)
    assert not can(mallory, Verb.VIEW, service=checkout, environment=staging)
    assert not visibility(mallory).pairs


def test_a_pair_allow_of_view_beats_a_deny_on_the_environment(
    mallory: User, checkout: Service, billing: Service, staging: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.VIEW], effect=Effect.DENY, environment=staging)
    grant(actor=None, user=mallory, verbs=[Verb.VIEW], service=checkout, environment=staging)
    seen = visibility(mallory)
    assert seen.pairs == {(checkout.pk, staging.pk)}
    assert seen.sees(service_id=checkout.pk, environment_id=staging.pk)
    assert not seen.sees(service_id=billing.pk, environment_id=staging.pk)


def test_an_environment_grant_shows_the_environment_even_without_services(
    mallory: User, staging: Environment, production: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.VIEW], environment=staging)
    seen = visibility(mallory)
    assert seen.sees(service_id=None, environment_id=staging.pk)
    assert not seen.sees(service_id=None, environment_id=production.pk)


def test_alice_sees_everything_and_mallory_nothing(
    alice: User, mallory: User, checkout: Service, staging: Environment
) -> None:
    assert visibility(alice).everything
    nothing = visibility(mallory)
    assert not nothing.everything
    assert not nothing.pairs
    assert not nothing.environment_ids
    assert not nothing.service_ids


def _queries(user: User, path: str) -> int:
    client = login(user)
    client.get(path)  # warm the session
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def _grow(alice: User, count: int) -> None:
    for _ in range(count):
        environment = factories.make_environment(availability="staging")
        for _ in range(2):
            factories.make_deployment(
                service=factories.make_service(), environment=environment, deployed_by=alice
            )


@pytest.mark.parametrize(
    "path", ["/", "/environments/", "/history/", "/api/v1/deployments/", "/api/v1/groups/"]
)
def test_the_filtered_lists_cost_the_same_queries_for_many_environments_and_services(
    alice: User, bob: User, path: str
) -> None:
    _grow(alice, 1)
    few = _queries(bob, path)
    _grow(alice, 12)
    assert _queries(bob, path) == few
