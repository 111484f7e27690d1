"""The schema of rollbacks that stick and automatic revert: what the database itself refuses."""

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments.models import AutomaticRevert, BadVersion, RevertPolicy
from tests import factories

pytestmark = pytest.mark.django_db

SHA = "a" * 40


def test_a_version_has_at_most_one_mark_in_force_per_environment(bob: User) -> None:
    service = factories.make_service()
    environment = factories.make_environment()
    BadVersion.objects.create(service=service, environment=environment, sha=SHA, reason="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        BadVersion.objects.create(service=service, environment=environment, sha=SHA, reason="y")


def test_an_unmarked_version_can_be_marked_again(bob: User) -> None:
    service = factories.make_service()
    environment = factories.make_environment()
    first = BadVersion.objects.create(service=service, environment=environment, sha=SHA, reason="x")
    first.unmarked_at = timezone.now()
    first.unmarked_by = bob
    first.save()
    BadVersion.objects.create(service=service, environment=environment, sha=SHA, reason="again")
    assert BadVersion.objects.active().get().reason == "again"
    assert BadVersion.objects.count() == 2


def test_the_database_refuses_a_sha_that_is_not_40_hex() -> None:
    service = factories.make_service()
    environment = factories.make_environment()
    with pytest.raises(IntegrityError), transaction.atomic():
        BadVersion.objects.create(service=service, environment=environment, sha="abc", reason="x")


def test_an_environment_has_one_policy_and_a_service_one_of_its_own() -> None:
    service = factories.make_service()
    environment = factories.make_environment()
    RevertPolicy.objects.create(environment=environment, enabled=True)
    RevertPolicy.objects.create(environment=environment, service=service, enabled=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        RevertPolicy.objects.create(environment=environment)
    with pytest.raises(IntegrityError), transaction.atomic():
        RevertPolicy.objects.create(environment=environment, service=service)


def test_a_failed_deployment_gets_one_automatic_revert_decision(bob: User) -> None:
    service = factories.make_service()
    environment = factories.make_environment()
    failed = factories.make_deployment(
        service=service, environment=environment, deployed_by=bob, status="FAILED"
    )
    AutomaticRevert.objects.create(failed=failed, explanation="not enabled")
    with pytest.raises(IntegrityError), transaction.atomic():
        AutomaticRevert.objects.create(failed=failed, explanation="again")
