"""Overriding blockers: who may (can_override) and what the deploy flow stores."""

import pytest
from django.contrib.auth.models import User

from permissions.blockers import Refusal, can_override, describe_override
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories

pytestmark = pytest.mark.django_db
SOFT = Refusal(1, "Friday freeze", "time window", "Blocked by 'Friday freeze' ...", True)
HARD = Refusal(2, "Incident", "unconditional", "Blocked by 'Incident' ...", False)


def test_only_holders_of_override_blockers_may_override(
    alice: User, bob: User, mallory: User
) -> None:
    svc = factories.make_service("checkout")
    staging = factories.make_environment("staging-1", availability="staging")
    prod = factories.make_environment("prod", availability="production")
    grant(actor=alice, user=mallory, verbs=[Verb.OVERRIDE_BLOCKERS], environment=prod)
    assert can_override(alice, service=svc, environment=prod)
    assert can_override(mallory, service=svc, environment=prod)
    assert not can_override(mallory, service=svc, environment=staging)
    assert not can_override(bob, service=svc, environment=staging)  # deploy is not override


def test_describe_override_keeps_the_reason_and_every_blocker() -> None:
    assert describe_override([SOFT], "  hotfix for INC-42  ") == {
        "reason": "hotfix for INC-42",
        "blockers": [
            {"id": 1, "name": "Friday freeze", "kind": "time window", "reason": SOFT.reason}
        ],
    }


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_override_needs_a_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        describe_override([SOFT], reason)


def test_a_non_overridable_blocker_cannot_be_overridden() -> None:
    with pytest.raises(ValueError, match="cannot be overridden: Incident"):
        describe_override([SOFT, HARD], "please")
