"""Overriding blockers: who may (can_override). What the deploy flow stores when one does:
tests/deployments/test_deploy_service.py."""

import pytest
from django.contrib.auth.models import User

from permissions.blockers import can_override
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories

pytestmark = pytest.mark.django_db


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
