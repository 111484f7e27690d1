"""Automatic revert on failed health (deployments.services.auto_revert), every guard rail, on
deployments the worker would leave behind (the status machine's own transitions, no cluster;
tests/revert/test_auto_revert_kubesim.py runs a real crash-looping rollout)."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from deployments.models import AutomaticRevert, BadVersion, Deployment, RevertPolicy
from deployments.notifications.models import Delivery
from deployments.services import bad_versions
from deployments.services.auto_revert import SYSTEM_USERNAME, on_failed
from deployments.status import Status
from history.models import AuditEvent
from permissions.models import Blocker
from tests import factories
from tests.revert.helpers import Scene, started, subscribe

pytestmark = pytest.mark.django_db


def running_good(user: User, **policy: Any) -> Scene:
    """A target whose good version is DONE, under a revert policy (none without arguments)."""
    environment = factories.make_environment(availability="staging")
    service = factories.make_service()
    good, bad = factories.make_version(service), factories.make_version(service)
    first = factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=user,
        version=good,
        finished_at=timezone.now(),
    )
    if policy:
        RevertPolicy.objects.create(environment=environment, **policy)
    return Scene(service, environment, good, bad, first, first)


def fail(deployment: Deployment, reason: str = "pods crash-looping") -> Deployment:
    deployment.transition_to(Status.FAILED, reason=reason)
    return deployment


def reverts(s: Scene) -> list[Deployment]:
    return list(Deployment.objects.filter(service=s.service, cause__isnull=False))


def explanation(failed: Deployment) -> str:
    return AutomaticRevert.objects.get(failed=failed).explanation


def test_a_failed_rollout_is_reverted_by_apollo_and_its_version_marked_bad(
    alice: User, bob: User, settings: Any
) -> None:
    subscribe(alice, settings, ["reverted"])
    s = running_good(bob, enabled=True, mark_bad=True)
    failed = fail(started(bob, s, s.bad))
    [revert] = reverts(s)
    assert (revert.version, revert.cause, revert.status) == (s.good, failed, Status.PENDING)
    assert revert.deployed_by.username == SYSTEM_USERNAME
    assert not revert.deployed_by.is_active
    assert not revert.deployed_by.has_usable_password()
    assert f"Automatic revert of #{failed.pk}" in revert.message
    decided = AutomaticRevert.objects.get(failed=failed)
    assert decided.revert == revert
    assert "Reverted automatically" in decided.explanation
    assert "pods crash-looping" in decided.explanation
    mark = BadVersion.objects.active().get()
    assert (mark.sha, mark.marked_by, mark.deployment) == (s.bad.git_commit_sha, None, failed)
    assert AuditEvent.objects.filter(action="deployment.auto_reverted", actor=None).exists()
    assert Delivery.objects.filter(event="reverted", deployment_id=revert.pk).exists()


def test_the_failed_page_links_to_the_revert_and_says_why(bob: User) -> None:
    s = running_good(bob, enabled=True)
    failed = fail(started(bob, s, s.bad))
    [revert] = reverts(s)
    client = Client()
    client.force_login(bob)
    page = client.get(f"/deployments/{failed.pk}/").content.decode()
    assert f'href="/deployments/{revert.pk}/" id="automatic-revert-link"' in page
    assert "Reverted automatically" in page
    assert "marked bad" in page  # mark_bad defaults to on
    revert_page = client.get(f"/deployments/{revert.pk}/").content.decode()
    assert f'A revert of <a href="/deployments/{failed.pk}/">' in revert_page
    assert "requested automatically by Apollo" in revert_page


def test_without_a_policy_nothing_happens(bob: User) -> None:
    s = running_good(bob)
    fail(started(bob, s, s.bad))
    assert reverts(s) == []
    assert not BadVersion.objects.exists()
    assert not AutomaticRevert.objects.exists()


def test_a_policy_may_only_mark_failed_versions_bad(bob: User) -> None:
    s = running_good(bob, enabled=False, mark_bad=True)
    fail(started(bob, s, s.bad))
    assert reverts(s) == []
    assert BadVersion.objects.active().get().sha == s.bad.git_commit_sha


def test_a_service_policy_replaces_its_environments(bob: User) -> None:
    s = running_good(bob, enabled=True, mark_bad=True)
    RevertPolicy.objects.create(
        environment=s.environment, service=s.service, enabled=False, mark_bad=False
    )
    fail(started(bob, s, s.bad))
    assert reverts(s) == []
    assert not BadVersion.objects.exists()


def test_a_cancelled_rollout_is_not_reverted(bob: User) -> None:
    s = running_good(bob, enabled=True, mark_bad=True)
    deployment = started(bob, s, s.bad)
    deployment.transition_to(Status.PENDING_CANCELLATION)
    deployment.transition_to(Status.CANCELING)
    deployment.transition_to(Status.FAILED, reason="rollback failed: pods crash-looping")
    assert reverts(s) == []
    assert not BadVersion.objects.exists()


def test_an_unreachable_cluster_is_not_a_verdict_on_the_version(bob: User) -> None:
    s = running_good(bob, enabled=True, mark_bad=True)
    failed = fail(
        started(bob, s, s.bad), "cluster kubesim unreachable after 5 attempts: connection refused"
    )
    assert reverts(s) == []
    assert not BadVersion.objects.exists()
    assert "unreachable" in explanation(failed)


def test_a_revert_is_never_reverted(bob: User) -> None:
    s = running_good(bob, enabled=True, mark_bad=False)
    earlier = factories.make_deployment(
        service=s.service, environment=s.environment, deployed_by=bob, version=s.bad
    )
    failed = fail(started(bob, s, s.bad, cause=earlier))
    assert [d.pk for d in reverts(s)] == [failed.pk]  # only the failed revert itself
    assert "never reverts a revert" in explanation(failed)


def test_it_never_goes_back_to_a_bad_version(bob: User) -> None:
    s = running_good(bob, enabled=True, mark_bad=False)
    bad_versions.mark_bad(
        user=bob,
        service=s.service,
        environment=s.environment,
        sha=s.good.git_commit_sha,
        reason="leaks memory",
    )
    failed = fail(started(bob, s, s.bad))
    assert reverts(s) == []
    assert "leaks memory" in explanation(failed)


def test_it_never_goes_back_to_a_version_older_than_the_policy_allows(bob: User) -> None:
    s = running_good(bob, enabled=True, max_age=timedelta(days=1))
    Deployment.objects.filter(pk=s.first.pk).update(finished_at=timezone.now() - timedelta(days=3))
    failed = fail(started(bob, s, s.bad))
    assert reverts(s) == []
    assert "longer ago than the policy allows" in explanation(failed)


def test_nothing_ran_before_nothing_to_revert_to(bob: User) -> None:
    s = running_good(bob, enabled=True)
    lone = factories.make_service()
    version = factories.make_version(lone)
    deployment = factories.make_deployment(
        service=lone, environment=s.environment, deployed_by=bob, version=version, status="PENDING"
    )
    deployment.transition_to(Status.STARTED)
    fail(deployment)
    assert "nothing to go back to" in explanation(deployment)


def _freeze(s: Scene) -> None:
    Blocker.objects.create(
        name="freeze", kind=Blocker.Kind.UNCONDITIONAL, config={}, environment=s.environment
    )


def test_blockers_stop_the_automatic_revert(bob: User) -> None:
    s = running_good(bob, enabled=True)
    _freeze(s)
    failed = fail(started(bob, s, s.bad))
    assert reverts(s) == []
    assert "freeze" in explanation(failed)


def test_a_policy_may_let_it_pass_blockers_and_says_so(bob: User) -> None:
    s = running_good(bob, enabled=True, may_pass_blockers=True)
    _freeze(s)
    fail(started(bob, s, s.bad))
    [revert] = reverts(s)
    assert [b["name"] for b in revert.overridden_blockers] == ["freeze"]
    assert "revert policy" in revert.override_reason


def test_one_failure_gets_one_automatic_revert(bob: User) -> None:
    s = running_good(bob, enabled=True)
    failed = fail(started(bob, s, s.bad))
    [revert] = reverts(s)
    # Decided again (a replayed transition): the database refuses a second revert.
    Deployment.objects.filter(pk=revert.pk).update(status=Status.DONE)
    with transaction.atomic():
        on_failed(failed, was=Status.STARTED)
    assert reverts(s) == [revert]
    assert AutomaticRevert.objects.filter(failed=failed).count() == 1


def test_the_database_allows_one_revert_in_flight_per_target(bob: User) -> None:
    s = running_good(bob, enabled=True)
    fail(started(bob, s, s.bad))
    [revert] = reverts(s)
    assert revert.status == Status.PENDING
    with pytest.raises(IntegrityError), transaction.atomic():
        Deployment.objects.create(
            service=s.service,
            environment=s.environment,
            version=s.good,
            deployed_by=bob,
            cause=revert,
        )
