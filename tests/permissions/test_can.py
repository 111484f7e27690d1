"""permissions.services.can: every verb, scope and precedence line of permissions.rules."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Service
from environments.models import Environment
from permissions.services import can, grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import BOB_VERBS

pytestmark = pytest.mark.django_db
ALLOW, DENY = Effect.ALLOW, Effect.DENY


@pytest.fixture
def billing() -> Service:
    return factories.make_service("billing")


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging-1", availability="staging")


@pytest.fixture
def production() -> Environment:
    return factories.make_environment("production-eu", availability="production")


@pytest.fixture
def production_us() -> Environment:
    return factories.make_environment("production-us", availability="production")


@pytest.fixture
def developers(mallory: User) -> Group:
    group = Group.objects.create(name="developers")
    mallory.groups.add(group)
    return group


# -- the personas ---------------------------------------------------------------------------


@pytest.mark.parametrize("verb", list(Verb))
def test_alice_the_superuser_may_do_every_verb_anywhere(
    alice: User, verb: Verb, checkout: Service, production: Environment
) -> None:
    assert can(alice, verb, service=checkout, environment=production)


@pytest.mark.parametrize("verb", BOB_VERBS)
def test_bob_may_do_his_verbs_in_every_staging_environment(
    bob: User, verb: Verb, checkout: Service, staging: Environment
) -> None:
    other_staging = factories.make_environment("staging-2", availability="staging")
    assert can(bob, verb, service=checkout, environment=staging)
    assert can(bob, verb, service=checkout, environment=other_staging)


@pytest.mark.parametrize("verb", [v for v in Verb if v != Verb.VIEW])
def test_bob_may_do_nothing_in_production_but_view(
    bob: User, verb: Verb, checkout: Service, production: Environment
) -> None:
    assert not can(bob, verb, service=checkout, environment=production)
    assert can(bob, Verb.VIEW, service=checkout, environment=production)


@pytest.mark.parametrize("verb", [Verb.EXEC, Verb.OVERRIDE_BLOCKERS, Verb.MANAGE])
def test_bob_may_not_do_the_verbs_he_was_not_given_even_in_staging(
    bob: User, verb: Verb, checkout: Service, staging: Environment
) -> None:
    assert not can(bob, verb, service=checkout, environment=staging)


@pytest.mark.parametrize("verb", list(Verb))
def test_mallory_may_do_nothing_and_carol_only_view_and_read_logs(
    carol: User, mallory: User, verb: Verb, checkout: Service, staging: Environment
) -> None:
    assert not can(mallory, verb, service=checkout, environment=staging)
    production = factories.make_environment("production-1", availability="production")
    for environment in (staging, production):
        allowed = can(carol, verb, service=checkout, environment=environment)
        assert allowed is (verb in (Verb.VIEW, Verb.VIEW_LOGS))


def test_an_anonymous_user_may_do_nothing(checkout: Service, staging: Environment) -> None:
    assert not can(AnonymousUser(), Verb.DEPLOY, service=checkout, environment=staging)


def test_a_deactivated_user_loses_every_grant_even_a_superuser(
    alice: User, bob: User, checkout: Service, staging: Environment
) -> None:
    for user in (alice, bob):
        user.is_active = False
        user.save()
        assert not can(user, Verb.DEPLOY, service=checkout, environment=staging)


# -- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", list(Verb))
def test_an_environment_grant_covers_every_service_in_that_environment_only(
    mallory: User, verb: Verb, checkout: Service, billing: Service, staging: Environment
) -> None:
    other = factories.make_environment("staging-2", availability="staging")
    grant(actor=None, user=mallory, verbs=[verb], environment=staging)
    assert can(mallory, verb, service=checkout, environment=staging)
    assert can(mallory, verb, service=billing, environment=staging)
    assert not can(mallory, verb, service=checkout, environment=other)


@pytest.mark.parametrize("verb", list(Verb))
def test_a_service_grant_covers_that_service_in_every_environment_only(
    mallory: User,
    verb: Verb,
    checkout: Service,
    billing: Service,
    staging: Environment,
    production: Environment,
) -> None:
    grant(actor=None, user=mallory, verbs=[verb], service=checkout)
    assert can(mallory, verb, service=checkout, environment=staging)
    assert can(mallory, verb, service=checkout, environment=production)
    assert not can(mallory, verb, service=billing, environment=staging)


@pytest.mark.parametrize("verb", list(Verb))
def test_a_pair_grant_covers_that_service_in_that_environment_only(
    mallory: User,
    verb: Verb,
    checkout: Service,
    billing: Service,
    staging: Environment,
    production: Environment,
) -> None:
    grant(actor=None, user=mallory, verbs=[verb], service=checkout, environment=staging)
    assert can(mallory, verb, service=checkout, environment=staging)
    assert not can(mallory, verb, service=checkout, environment=production)
    assert not can(mallory, verb, service=billing, environment=staging)


@pytest.mark.parametrize("verb", list(Verb))
def test_an_availability_grant_covers_every_environment_of_that_availability_only(
    mallory: User,
    verb: Verb,
    checkout: Service,
    staging: Environment,
    production: Environment,
    production_us: Environment,
) -> None:
    grant(actor=None, user=mallory, verbs=[verb], availability="production")
    assert can(mallory, verb, service=checkout, environment=production)
    assert can(mallory, verb, service=checkout, environment=production_us)
    assert not can(mallory, verb, service=checkout, environment=staging)


def test_a_grant_for_one_verb_does_not_give_another(
    mallory: User, checkout: Service, staging: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.VIEW_LOGS], environment=staging)
    assert not can(mallory, Verb.EXEC, service=checkout, environment=staging)
    assert not can(mallory, Verb.DEPLOY, service=checkout, environment=staging)


def test_a_group_grant_applies_to_its_members_and_nobody_else(
    mallory: User, carol: User, developers: Group, checkout: Service, staging: Environment
) -> None:
    grant(actor=None, group=developers, verbs=[Verb.DEPLOY], environment=staging)
    assert can(mallory, Verb.DEPLOY, service=checkout, environment=staging)
    assert not can(carol, Verb.DEPLOY, service=checkout, environment=staging)


def test_another_users_grant_does_not_apply(
    mallory: User, carol: User, checkout: Service, staging: Environment
) -> None:
    grant(actor=None, user=carol, verbs=[Verb.DEPLOY], environment=staging)
    assert not can(mallory, Verb.DEPLOY, service=checkout, environment=staging)


def test_a_question_about_a_service_alone_is_answered_by_service_grants_only(
    mallory: User, checkout: Service, staging: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.MANAGE], environment=staging)
    assert not can(mallory, Verb.MANAGE, service=checkout)
    grant(actor=None, user=mallory, verbs=[Verb.MANAGE], service=checkout)
    assert can(mallory, Verb.MANAGE, service=checkout)


def test_a_question_about_an_environment_alone_is_answered_by_environment_and_availability_grants(
    mallory: User, carol: User, checkout: Service, staging: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.MANAGE], service=checkout, environment=staging)
    grant(actor=None, user=mallory, verbs=[Verb.MANAGE], service=checkout)
    assert not can(mallory, Verb.MANAGE, environment=staging)
    grant(actor=None, user=carol, verbs=[Verb.MANAGE], availability="staging")
    assert can(carol, Verb.MANAGE, environment=staging)


def test_a_question_about_nothing_is_refused_for_everyone_but_superusers(
    alice: User, mallory: User
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], availability="staging")
    assert not can(mallory, Verb.DEPLOY)
    assert can(alice, Verb.DEPLOY)


# -- precedence: the most specific scope decides ---------------------------------------------


@pytest.mark.parametrize(
    ("broad", "narrow"),
    [
        ({"availability": "production"}, {"service": "checkout"}),
        ({"availability": "production"}, {"environment": "production-eu"}),
        ({"service": "checkout"}, {"environment": "production-eu"}),
        ({"environment": "production-eu"}, {"pair": True}),
        ({"service": "checkout"}, {"pair": True}),
        ({"availability": "production"}, {"pair": True}),
    ],
)
@pytest.mark.parametrize(("broad_effect", "narrow_effect"), [(ALLOW, DENY), (DENY, ALLOW)])
def test_the_more_specific_grant_decides_whatever_its_effect(
    mallory: User,
    checkout: Service,
    production: Environment,
    broad: dict[str, object],
    narrow: dict[str, object],
    broad_effect: Effect,
    narrow_effect: Effect,
) -> None:
    def scope(spec: dict[str, object]) -> dict[str, object]:
        if "pair" in spec:
            return {"service": checkout, "environment": production}
        if "service" in spec:
            return {"service": checkout}
        if "environment" in spec:
            return {"environment": production}
        return {"availability": spec["availability"]}

    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], effect=broad_effect, **scope(broad))  # type: ignore[arg-type]
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], effect=narrow_effect, **scope(narrow))  # type: ignore[arg-type]
    allowed = can(mallory, Verb.DEPLOY, service=checkout, environment=production)
    assert allowed is (narrow_effect == ALLOW)


def test_an_environment_deny_beats_a_service_allow(
    mallory: User, checkout: Service, production: Environment
) -> None:
    # Environment outranks service; the original Apollo ranked them equal.
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], service=checkout)
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], effect=DENY, environment=production)
    assert not can(mallory, Verb.DEPLOY, service=checkout, environment=production)


# -- precedence: at equal specificity DENY wins ---------------------------------------------


@pytest.mark.parametrize("scope", ["pair", "environment", "service", "availability"])
def test_at_equal_specificity_deny_beats_allow(
    mallory: User, checkout: Service, production: Environment, scope: str
) -> None:
    kwargs: dict[str, object] = {
        "pair": {"service": checkout, "environment": production},
        "environment": {"environment": production},
        "service": {"service": checkout},
        "availability": {"availability": "production"},
    }[scope]  # type: ignore[assignment]
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], **kwargs)  # type: ignore[arg-type]
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], effect=DENY, **kwargs)  # type: ignore[arg-type]
    assert not can(mallory, Verb.DEPLOY, service=checkout, environment=production)


def test_at_the_pair_level_deny_wins_where_the_original_apollo_let_allow_win(
    mallory: User, checkout: Service, production: Environment
) -> None:
    # The original's comment said DENY is always stronger, but its pair-level reduce kept the
    # first (ALLOW) permission. Order of creation must not matter either.
    grant(
        actor=None,
        user=mallory,
        verbs=[Verb.DEPLOY],
        effect=DENY,
        service=checkout,
        environment=production,
    )
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], service=checkout, environment=production)
    assert not can(mallory, Verb.DEPLOY, service=checkout, environment=production)


def test_a_group_deny_beats_a_user_allow_at_the_same_specificity(
    mallory: User, developers: Group, checkout: Service, production: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], environment=production)
    grant(actor=None, group=developers, verbs=[Verb.DEPLOY], effect=DENY, environment=production)
    assert not can(mallory, Verb.DEPLOY, service=checkout, environment=production)


def test_a_user_deny_beats_a_group_allow_at_the_same_specificity(
    mallory: User, developers: Group, checkout: Service, production: Environment
) -> None:
    grant(actor=None, group=developers, verbs=[Verb.DEPLOY], environment=production)
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], effect=DENY, environment=production)
    assert not can(mallory, Verb.DEPLOY, service=checkout, environment=production)


def test_a_narrower_user_allow_beats_a_broader_group_deny(
    mallory: User, developers: Group, checkout: Service, production: Environment
) -> None:
    grant(actor=None, group=developers, verbs=[Verb.DEPLOY], effect=DENY, availability="production")
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], service=checkout, environment=production)
    assert can(mallory, Verb.DEPLOY, service=checkout, environment=production)


def test_a_deny_for_another_verb_does_not_interfere(
    mallory: User, checkout: Service, production: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], environment=production)
    grant(actor=None, user=mallory, verbs=[Verb.EXEC], effect=DENY, environment=production)
    assert can(mallory, Verb.DEPLOY, service=checkout, environment=production)


def test_a_deny_alone_refuses_like_no_grant(
    mallory: User, checkout: Service, production: Environment
) -> None:
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], effect=DENY, environment=production)
    assert not can(mallory, Verb.DEPLOY, service=checkout, environment=production)


def test_can_accepts_the_verb_as_a_plain_string(
    bob: User, checkout: Service, staging: Environment
) -> None:
    assert can(bob, "deploy", service=checkout, environment=staging)


def test_an_unknown_verb_is_an_error_not_a_refusal(bob: User, checkout: Service) -> None:
    with pytest.raises(ValueError, match="fly"):
        can(bob, "fly", service=checkout)


def test_can_costs_one_query_however_many_grants_and_groups_exist(
    mallory: User, developers: Group, checkout: Service, production: Environment
) -> None:
    for n in range(10):
        env = factories.make_environment(f"env-x{n}", availability="production")
        grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], environment=env)
        grant(actor=None, group=developers, verbs=[Verb.DEPLOY], service=checkout, environment=env)
    with CaptureQueriesContext(connection) as queries:
        can(mallory, Verb.DEPLOY, service=checkout, environment=production)
    assert len(queries) == 1
