"""permissions.selectors: what a user may act on, for whole lists, in constant queries."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Service
from environments.models import Environment
from permissions.selectors import allowed_targets, environments_for, services_for
from permissions.services import can, grant
from permissions.verbs import Effect, Verb
from tests import factories

pytestmark = pytest.mark.django_db


def _world(size: int, *, start: int = 0) -> None:
    for n in range(start, start + size):
        factories.make_service(f"svc-w{n}")
        factories.make_environment(f"stg-w{n}", availability="staging")
        factories.make_environment(f"prd-w{n}", availability="production")


def test_bob_sees_every_staging_environment_and_no_production_one(bob: User) -> None:
    _world(3)
    names = set(environments_for(bob, Verb.DEPLOY).values_list("name", flat=True))
    assert names == {"stg-w0", "stg-w1", "stg-w2"}


def test_mallory_sees_nothing_to_act_on(mallory: User) -> None:
    _world(2)
    assert list(environments_for(mallory, Verb.DEPLOY)) == []
    assert list(services_for(mallory, Verb.DEPLOY)) == []
    assert allowed_targets(mallory, Verb.DEPLOY) == set()


def test_anonymous_users_see_nothing_and_alice_sees_everything(alice: User) -> None:
    _world(2)
    assert allowed_targets(AnonymousUser(), Verb.DEPLOY) == set()
    assert environments_for(alice, Verb.EXEC).count() == 4
    assert services_for(alice, Verb.EXEC).count() == 2
    assert len(allowed_targets(alice, Verb.EXEC)) == 8


def test_services_for_an_environment_honour_a_pair_deny(mallory: User) -> None:
    checkout, billing = factories.make_service("checkout"), factories.make_service("billing")
    prod = factories.make_environment("prod", availability="production")
    other = factories.make_environment("prod-2", availability="production")
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], availability="production")
    grant(
        actor=None,
        user=mallory,
        verbs=[Verb.DEPLOY],
        effect=Effect.DENY,
        service=checkout,
        environment=prod,
    )
    assert list(services_for(mallory, Verb.DEPLOY, environment=prod)) == [billing]
    assert set(services_for(mallory, Verb.DEPLOY)) == {billing, checkout}
    assert set(services_for(mallory, Verb.DEPLOY, environment=other)) == {billing, checkout}


def test_allowed_targets_agree_with_can_on_every_pair(mallory: User) -> None:
    _world(3)
    group = Group.objects.create(name="devs")
    mallory.groups.add(group)
    svc = factories.make_service("special")
    env = factories.make_environment("special-env", availability="production")
    grant(actor=None, group=group, verbs=[Verb.DEPLOY], availability="staging")
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], service=svc)
    grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], effect=Effect.DENY, environment=env)
    targets = allowed_targets(mallory, Verb.DEPLOY)
    for service in Service.objects.all():
        for environment in Environment.objects.all():
            expected = can(mallory, Verb.DEPLOY, service=service, environment=environment)
            assert ((service.pk, environment.pk) in targets) is expected, (service, environment)
    assert (svc.pk, env.pk) not in targets


def test_allowed_targets_cost_the_same_queries_for_a_big_world_as_for_a_small_one(
    mallory: User,
) -> None:
    group = Group.objects.create(name="devs")
    mallory.groups.add(group)
    grant(actor=None, group=group, verbs=[Verb.DEPLOY], availability="staging")
    _world(1)
    with CaptureQueriesContext(connection) as few:
        allowed_targets(mallory, Verb.DEPLOY)
        list(environments_for(mallory, Verb.DEPLOY))
        list(services_for(mallory, Verb.DEPLOY))
    _world(15, start=1)
    for service in factories.make_service("extra-1"), factories.make_service("extra-2"):
        grant(actor=None, user=mallory, verbs=[Verb.DEPLOY], service=service)
        grant(actor=None, group=group, verbs=[Verb.DEPLOY], effect=Effect.DENY, service=service)
    with CaptureQueriesContext(connection) as many:
        assert len(allowed_targets(mallory, Verb.DEPLOY)) > 15
        list(environments_for(mallory, Verb.DEPLOY))
        list(services_for(mallory, Verb.DEPLOY))
    assert len(many) == len(few) == 3 * 3 + 2
