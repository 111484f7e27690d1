"""may_somewhere (the header's "Deploy" link on every page) answers "may this user deploy
anywhere?" without spelling out the allowed pairs: its contract is bool(allowed_targets(...)),
checked here over a table of grant combinations and random mixes, in queries that do not grow
with the services and environments."""

import random
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Service
from environments.models import Environment
from permissions.selectors import allowed_targets, may_somewhere
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories

pytestmark = pytest.mark.django_db

DEPLOY, VIEW = [Verb.DEPLOY], [Verb.VIEW]
ALLOW, DENY = Effect.ALLOW, Effect.DENY


class World:
    """Two services, a staging and a production environment, a user in a group."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.group = Group.objects.create(name="devs")
        user.groups.add(self.group)
        self.checkout = factories.make_service("checkout")
        self.catalog = factories.make_service("catalog")
        self.staging = factories.make_environment("staging-1", availability="staging")
        self.production = factories.make_environment("prod-1", availability="production")

    def give(self, effect: Effect = ALLOW, verbs: list[Verb] = DEPLOY, **where: Any) -> "World":
        holder: dict[str, Any] = {"user": self.user}
        if where.pop("to_group", False):
            holder = {"group": self.group}
        grant(actor=None, verbs=verbs, effect=effect, **holder, **where)
        return self  # (so that a case may give several in one lambda)


Case = Callable[[World], object]

CASES: dict[str, tuple[Case, bool]] = {
    "no grant": (lambda w: None, False),
    "a DENY only": (lambda w: w.give(DENY, environment=w.staging), False),
    "view only, not deploy": (lambda w: w.give(verbs=VIEW, environment=w.staging), False),
    "an environment ALLOW": (lambda w: w.give(environment=w.staging), True),
    "a service ALLOW": (lambda w: w.give(service=w.catalog), True),
    "a pair ALLOW": (lambda w: w.give(service=w.catalog, environment=w.production), True),
    "an availability ALLOW": (lambda w: w.give(availability="staging"), True),
    "an availability ALLOW with no environment of it": (
        lambda w: w.give(availability="qa"),
        False,
    ),
    "an availability ALLOW, its only environment DENIED": (
        lambda w: (w.give(availability="staging"), w.give(DENY, environment=w.staging)),
        False,
    ),
    "an environment ALLOW, each of its services DENIED as a pair": (
        lambda w: (
            w.give(environment=w.staging),
            w.give(DENY, service=w.checkout, environment=w.staging),
            w.give(DENY, service=w.catalog, environment=w.staging),
        ),
        False,
    ),
    "an environment ALLOW, one of its services DENIED as a pair": (
        lambda w: (
            w.give(environment=w.staging),
            w.give(DENY, service=w.checkout, environment=w.staging),
        ),
        True,
    ),
    "a service ALLOW, every environment DENIED": (
        lambda w: (
            w.give(service=w.checkout),
            w.give(DENY, environment=w.staging),
            w.give(DENY, environment=w.production),
        ),
        False,
    ),
    "a service ALLOW, its service DENIED by the group at the same scope": (
        lambda w: (w.give(service=w.checkout), w.give(DENY, service=w.checkout, to_group=True)),
        False,
    ),
    "a pair ALLOW beating an environment DENY": (
        lambda w: (
            w.give(DENY, environment=w.production),
            w.give(service=w.checkout, environment=w.production),
        ),
        True,
    ),
    "a service DENY beating an availability ALLOW for both services": (
        lambda w: (
            w.give(availability="production"),
            w.give(DENY, service=w.checkout),
            w.give(DENY, service=w.catalog),
        ),
        False,
    ),
    "a group's environment ALLOW": (
        lambda w: w.give(environment=w.production, to_group=True),
        True,
    ),
    "a group's ALLOW, the user's own DENY at the same scope": (
        lambda w: (
            w.give(environment=w.production, to_group=True),
            w.give(DENY, environment=w.production),
        ),
        False,
    ),
    "a service ALLOW on a service deleted since": (
        lambda w: (w.give(service=w.catalog), Service.objects.filter(pk=w.catalog.pk).delete()),
        False,
    ),
    "an environment ALLOW on an environment deleted since": (
        lambda w: (
            w.give(environment=w.staging),
            Environment.objects.filter(pk=w.staging.pk).delete(),
        ),
        False,
    ),
    "an environment ALLOW and no service at all": (
        lambda w: (w.give(environment=w.staging), Service.objects.all().delete()),
        False,
    ),
    "a service ALLOW and no environment at all": (
        lambda w: (w.give(service=w.catalog), Environment.objects.all().delete()),
        False,
    ),
    "an ALLOW to an inactive user": (
        lambda w: (
            w.give(environment=w.staging),
            User.objects.filter(pk=w.user.pk).update(is_active=False),
        ),
        False,
    ),
    "a superuser without grants": (
        lambda w: User.objects.filter(pk=w.user.pk).update(is_superuser=True),
        True,
    ),
    "a superuser and no service at all": (
        lambda w: (
            User.objects.filter(pk=w.user.pk).update(is_superuser=True),
            Service.objects.all().delete(),
        ),
        False,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_it_answers_as_the_allowed_pairs_do(name: str, mallory: User) -> None:
    setup, expected = CASES[name]
    setup(World(mallory))
    user = User.objects.get(pk=mallory.pk)
    assert bool(allowed_targets(user, Verb.DEPLOY)) is expected, name
    assert may_somewhere(user, Verb.DEPLOY) is expected, name


def test_it_answers_as_the_allowed_pairs_do_for_the_personas(
    alice: User, bob: User, carol: User, mallory: User
) -> None:
    factories.make_service("checkout")
    factories.make_environment("staging-1", availability="staging")
    factories.make_environment("prod-1", availability="production")
    for user in (alice, bob, carol, mallory):
        assert may_somewhere(user, Verb.DEPLOY) is bool(allowed_targets(user, Verb.DEPLOY))
    assert may_somewhere(bob, Verb.DEPLOY)
    assert not may_somewhere(carol, Verb.DEPLOY)
    assert may_somewhere(AnonymousUser(), Verb.DEPLOY) is False


@pytest.mark.parametrize("seed", range(25))
def test_it_answers_as_the_allowed_pairs_do_for_random_grants(seed: int, mallory: User) -> None:
    rng = random.Random(seed)  # a fixed seed per case: the same grants on every run
    world = World(mallory)
    services = [world.checkout, world.catalog, factories.make_service("ledger")]
    environments = [world.staging, world.production]
    for _ in range(rng.randint(0, 6)):
        where: dict[str, Any] = {"to_group": rng.random() < 0.4}
        scope = rng.choice(("pair", "environment", "service", "availability"))
        if scope in ("pair", "service"):
            where["service"] = rng.choice(services)
        if scope in ("pair", "environment"):
            where["environment"] = rng.choice(environments)
        if scope == "availability":
            where["availability"] = rng.choice(["staging", "production"])
        world.give(
            DENY if rng.random() < 0.4 else ALLOW, [rng.choice([Verb.VIEW, Verb.DEPLOY])], **where
        )
    for verb in (Verb.DEPLOY, Verb.VIEW):
        assert may_somewhere(mallory, verb) is bool(allowed_targets(mallory, verb)), seed


def _queries(user: User) -> int:
    with CaptureQueriesContext(connection) as queries:
        may_somewhere(user, Verb.DEPLOY)
    return len(queries)


def test_its_queries_do_not_grow_with_services_and_environments(bob: User, carol: User) -> None:
    factories.make_environment("staging-0", availability="staging")
    small = (_queries(bob), _queries(carol))
    for n in range(1, 6):
        factories.make_environment(f"staging-{n}", availability="staging")
    for n in range(30):
        factories.make_service(f"svc-{n}")
    assert (_queries(bob), _queries(carol)) == small
    # bob holds a deploy ALLOW: holdings, services, environments; carol none: holdings only.
    assert small == (3, 1)
