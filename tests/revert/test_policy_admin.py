"""Revert policies are set by an admin in the Django admin; a bad value is refused with a clear
message and nothing is saved."""

import pytest
from django.contrib.auth.models import User

from deployments.models import RevertPolicy
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

ADD = "/admin/deployments/revertpolicy/add/"


def test_alice_turns_on_automatic_revert_for_an_environment(alice: User) -> None:
    environment = factories.make_environment()
    response = login(alice).post(
        ADD,
        {"environment": environment.pk, "enabled": "on", "mark_bad": "on", "max_age": "7 00:00:00"},
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    policy = RevertPolicy.objects.get()
    assert (policy.enabled, policy.mark_bad, policy.max_age.days) == (True, True, 7)  # type: ignore[union-attr]


def test_a_negative_max_age_is_refused(alice: User) -> None:
    environment = factories.make_environment()
    response = login(alice).post(
        ADD, {"environment": environment.pk, "enabled": "on", "max_age": "-1 00:00:00"}
    )
    assert response.status_code == 200
    assert "longer than zero" in response.content.decode()
    assert not RevertPolicy.objects.exists()


def test_a_second_policy_for_the_same_environment_is_refused(alice: User) -> None:
    environment = factories.make_environment()
    RevertPolicy.objects.create(environment=environment)
    response = login(alice).post(ADD, {"environment": environment.pk, "enabled": "on"})
    assert response.status_code == 200
    assert RevertPolicy.objects.count() == 1


def test_bob_cannot_open_the_policies(bob: User) -> None:
    response = login(bob).get("/admin/deployments/revertpolicy/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
