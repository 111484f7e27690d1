"""allowed_targets and visibility decide services no grant names once per environment: they must
agree with `can` (one decision per pair) for every mix of grants, and Visibility.q must keep
exactly the rows of the visible pairs."""

import random
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from deployments.models import Deployment
from permissions.selectors import allowed_targets, visibility
from permissions.services import can, grant
from permissions.verbs import Effect, Verb
from tests import factories

pytestmark = pytest.mark.django_db

SCOPES = ("pair", "environment", "service", "availability")


def _random_grants(
    rng: random.Random, user: User, group: Group, world: dict[str, list[Any]]
) -> None:
    for _ in range(rng.randint(0, 7)):
        scope = rng.choice(SCOPES)
        holder = {"user": user} if rng.random() < 0.5 else {"group": group}
        where: dict[str, object] = {}
        if scope in ("pair", "service"):
            where["service"] = rng.choice(world["services"])
        if scope in ("pair", "environment"):
            where["environment"] = rng.choice(world["environments"])
        if scope == "availability":
            where["availability"] = rng.choice(["staging", "production"])
        effect = Effect.DENY if rng.random() < 0.3 else Effect.ALLOW
        verbs = [rng.choice([Verb.VIEW, Verb.DEPLOY])]
        grant(actor=None, verbs=verbs, effect=effect, **holder, **where)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(25))
def test_allowed_targets_and_visibility_agree_with_one_decision_per_pair(
    seed: int, mallory: User
) -> None:
    rng = random.Random(seed)  # a fixed seed per case: the same grants on every run
    group = Group.objects.create(name="devs")
    mallory.groups.add(group)
    services = [factories.make_service(f"svc-{n}") for n in range(4)]
    environments = [
        factories.make_environment(f"env-{n}", availability=("staging", "production")[n % 2])
        for n in range(4)
    ]
    _random_grants(rng, mallory, group, {"services": services, "environments": environments})
    for service in services:
        for environment in environments:
            factories.make_deployment(service=service, environment=environment, deployed_by=mallory)

    deployable = allowed_targets(mallory, Verb.DEPLOY)
    seen = visibility(mallory)
    expected_view = set()
    for service in services:
        for environment in environments:
            pair = (service.pk, environment.pk)
            assert (pair in deployable) is can(
                mallory, Verb.DEPLOY, service=service, environment=environment
            ), (seed, service, environment)
            viewable = can(mallory, Verb.VIEW, service=service, environment=environment)
            assert seen.sees(service_id=service.pk, environment_id=environment.pk) is viewable
            if viewable:
                expected_view.add(pair)
    rows = set(Deployment.objects.filter(seen.q()).values_list("service_id", "environment_id"))
    assert rows == expected_view, seed
