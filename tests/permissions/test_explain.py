"""permissions.services.explain: which grant decided, and why, in words."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User

from deployments.models import Service
from environments.models import Environment
from permissions.services import explain, grant
from permissions.verbs import Effect, Verb
from tests import factories

pytestmark = pytest.mark.django_db


def test_it_names_the_group_deny_that_refused_bob(
    bob: User, checkout: Service, production: Environment
) -> None:
    developers = Group.objects.create(name="developers")
    bob.groups.add(developers)
    grant(actor=None, user=bob, verbs=[Verb.DEPLOY], service=checkout)
    deny = grant(
        actor=None,
        group=developers,
        verbs=[Verb.DEPLOY],
        effect=Effect.DENY,
        environment=production,
    )
    decision = explain(bob, Verb.DEPLOY, service=checkout, environment=production)
    assert not decision.allowed
    assert decision.reason == (
        "bob may not deploy checkout in production: DENY on environment production "
        "to group developers"
    )
    assert decision.deciding_grant is not None
    assert decision.deciding_grant.grant_id == deny.pk


def test_it_names_the_availability_allow_that_lets_bob_deploy_in_staging(
    bob: User, checkout: Service
) -> None:
    staging = factories.make_environment("staging-1", availability="staging")
    decision = explain(bob, Verb.DEPLOY, service=checkout, environment=staging)
    assert decision.allowed
    assert decision.reason == (
        "bob may deploy checkout in staging-1: ALLOW on availability staging to user bob"
    )


def test_it_says_no_grant_matches_for_mallory(
    mallory: User, checkout: Service, production: Environment
) -> None:
    decision = explain(mallory, Verb.VIEW_LOGS, service=checkout, environment=production)
    assert not decision.allowed
    assert decision.deciding_grant is None
    assert (
        decision.reason == "mallory may not view logs of checkout in production: no grant matches"
    )


def test_it_says_superuser_for_alice(alice: User, checkout: Service) -> None:
    decision = explain(alice, Verb.MANAGE, service=checkout)
    assert decision.allowed
    assert decision.reason == "alice may manage checkout: superuser"


def test_it_says_why_anonymous_and_inactive_users_are_refused(bob: User, checkout: Service) -> None:
    anonymous = explain(AnonymousUser(), Verb.DEPLOY, service=checkout)
    assert anonymous.reason == "anonymous may not deploy checkout: not signed in"
    bob.is_active = False
    assert explain(bob, Verb.DEPLOY, service=checkout).reason.endswith("account inactive")


def test_it_names_the_users_own_deny_before_a_groups_at_the_same_level(
    mallory: User, checkout: Service, production: Environment
) -> None:
    ops = Group.objects.create(name="ops")
    mallory.groups.add(ops)
    grant(actor=None, group=ops, verbs=[Verb.EXEC], effect=Effect.DENY, service=checkout)
    grant(actor=None, user=mallory, verbs=[Verb.EXEC], effect=Effect.DENY, service=checkout)
    decision = explain(mallory, Verb.EXEC, service=checkout, environment=production)
    assert decision.reason.endswith("DENY on service checkout to user mallory")


def test_it_describes_a_pair_scope(
    mallory: User, checkout: Service, production: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.RESTART], service=checkout, environment=production)
    decision = explain(mallory, Verb.RESTART, service=checkout, environment=production)
    assert decision.reason == (
        "mallory may restart checkout in production: ALLOW on service checkout in environment "
        "production to user mallory"
    )


def test_a_decision_is_frozen(bob: User, checkout: Service) -> None:
    decision = explain(bob, Verb.DEPLOY, service=checkout)
    with pytest.raises(AttributeError):
        decision.allowed = True  # type: ignore[misc]
