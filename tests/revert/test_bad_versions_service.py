"""deployments.services.bad_versions and the request check: a version marked bad is refused
with who and why, everywhere, unless overridden with a reason; marks are undone by `manage`."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied

from deployments.models import BadVersion, Deployment, Group
from deployments.notifications.models import Delivery
from deployments.services import bad_versions
from deployments.services.deploy import (
    Target,
    request_deployment,
    request_deployments,
    revert_deployment,
)
from history.models import AuditEvent
from permissions.services import grant
from permissions.verbs import Verb
from tests.revert.helpers import scene, subscribe

pytestmark = pytest.mark.django_db


def _mark(user: User | None, s: Any, reason: str = "broke checkout") -> BadVersion:
    return bad_versions.mark_bad(
        user=user,
        service=s.service,
        environment=s.environment,
        sha=s.bad.git_commit_sha,
        reason=reason,
    ).mark


def test_bob_reverts_and_marks_the_reverted_version_bad(bob: User) -> None:
    s = scene(bob)
    outcome = revert_deployment(user=bob, deployment=s.second, mark_bad="500s on /pay")
    assert outcome is not None
    assert outcome.kind == "created", outcome
    revert = outcome.deployment
    assert revert is not None
    assert revert.version == s.good
    assert revert.cause == s.second
    mark = BadVersion.objects.active().get()
    assert (mark.sha, mark.marked_by, mark.reason, mark.deployment) == (
        s.bad.git_commit_sha,
        bob,
        "500s on /pay",
        s.second,
    )
    assert AuditEvent.objects.filter(action="version.marked_bad", actor=bob).exists()


def test_a_revert_that_asks_to_mark_without_a_reason_changes_nothing(bob: User) -> None:
    s = scene(bob)
    with pytest.raises(bad_versions.BadVersionError, match="reason"):
        revert_deployment(user=bob, deployment=s.second, mark_bad="   ")
    assert Deployment.objects.count() == 2
    assert not BadVersion.objects.exists()


def test_a_blocked_revert_marks_nothing(bob: User, alice: User) -> None:
    # The version it would go back to is bad itself: the revert is refused, nothing is marked.
    s2 = scene(bob)
    bad_versions.mark_bad(
        user=alice,
        service=s2.service,
        environment=s2.environment,
        sha=s2.good.git_commit_sha,
        reason="the old one is bad too",
    )
    outcome = revert_deployment(user=bob, deployment=s2.second, mark_bad="and this")
    assert outcome is not None
    assert outcome.kind == "blocked"
    assert "the old one is bad too" in outcome.reason
    assert not BadVersion.objects.filter(sha=s2.bad.git_commit_sha).exists()


def test_carol_may_not_mark_a_version_bad(carol: User) -> None:
    s = scene(carol)
    with pytest.raises(PermissionDenied):
        _mark(carol, s)
    assert not BadVersion.objects.exists()


def test_a_version_bad_already_keeps_its_first_mark(bob: User, alice: User) -> None:
    s = scene(bob)
    first = _mark(bob, s, "first")
    again = bad_versions.mark_bad(
        user=alice,
        service=s.service,
        environment=s.environment,
        sha=s.bad.git_commit_sha,
        reason="second",
    )
    assert not again.created
    assert again.mark == first
    assert BadVersion.objects.count() == 1


def test_an_unknown_sha_is_refused(bob: User) -> None:
    s = scene(bob)
    with pytest.raises(bad_versions.BadVersionError, match="no registered version"):
        bad_versions.mark_bad(
            user=bob, service=s.service, environment=s.environment, sha="f" * 40, reason="x"
        )


def test_a_bad_version_is_refused_with_who_and_why(bob: User) -> None:
    s = scene(bob)
    _mark(bob, s, "broke checkout")
    outcome = request_deployment(
        user=bob, service=s.service, environment=s.environment, version=s.bad
    )
    assert outcome.kind == "blocked"
    assert "marked bad" in outcome.reason
    assert "by bob" in outcome.reason
    assert "broke checkout" in outcome.reason
    assert not outcome.may_override  # bob may not override blockers
    assert Deployment.objects.count() == 2


def test_it_is_bad_only_in_its_environment(bob: User) -> None:
    s = scene(bob)
    _mark(bob, s)
    elsewhere = scene(bob)  # another staging environment
    outcome = request_deployment(
        user=bob, service=s.service, environment=elsewhere.environment, version=s.bad
    )
    assert outcome.kind == "created", outcome.reason


def test_jenkins_with_deploy_is_refused_a_bad_version(jenkins: User, bob: User) -> None:
    grant(actor=None, user=jenkins, verbs=[Verb.DEPLOY], availability="staging")
    s = scene(bob)
    _mark(bob, s)
    outcome = request_deployment(
        user=jenkins, service=s.service, environment=s.environment, version=s.bad
    )
    assert outcome.kind == "blocked"
    assert "marked bad" in outcome.reason


def test_a_group_deploy_is_refused_all_or_nothing(bob: User) -> None:
    s = scene(bob)
    _mark(bob, s)
    other = scene(bob)
    eu = Group.objects.create(service=s.service, environment=s.environment, name="eu")
    targets = [
        Target(s.service, s.environment, eu, s.bad),
        Target(s.service, other.environment, None, s.bad),
    ]
    outcomes = request_deployments(user=bob, targets=targets)
    assert [o.kind for o in outcomes] == ["blocked", "held"]
    assert Deployment.objects.count() == 4


def test_alice_overrides_with_a_reason_recorded_in_history_and_the_deployment(
    alice: User, bob: User, settings: Any
) -> None:
    subscribe(alice, settings, ["overridden", "reverted"])
    s = scene(bob)
    _mark(bob, s)
    refused = request_deployment(
        user=alice, service=s.service, environment=s.environment, version=s.bad
    )
    assert refused.kind == "blocked"
    assert refused.may_override
    outcome = request_deployment(
        user=alice,
        service=s.service,
        environment=s.environment,
        version=s.bad,
        override_reason="the fix is in the config",
    )
    assert outcome.kind == "created"
    assert outcome.deployment is not None
    deployment = outcome.deployment
    assert deployment.override_reason == "the fix is in the config"
    assert [b["name"] for b in deployment.overridden_blockers] == ["bad version"]
    event = AuditEvent.objects.get(action="version.bad_overridden")
    assert event.actor == alice
    assert "the fix is in the config" in event.summary
    assert Delivery.objects.filter(event="overridden", deployment_id=deployment.pk).exists()


def test_a_revert_is_announced_as_reverted(alice: User, bob: User, settings: Any) -> None:
    subscribe(alice, settings, ["reverted"])
    s = scene(bob)
    outcome = revert_deployment(user=bob, deployment=s.second, mark_bad="bad")
    assert outcome is not None
    assert outcome.deployment is not None
    assert Delivery.objects.filter(event="reverted", deployment_id=outcome.deployment.pk).exists()


def test_only_manage_unmarks_with_a_reason(alice: User, bob: User) -> None:
    s = scene(bob)
    mark = _mark(bob, s)
    with pytest.raises(PermissionDenied):
        bad_versions.unmark(user=bob, mark=mark, reason="fixed")
    with pytest.raises(bad_versions.BadVersionError):
        bad_versions.unmark(user=alice, mark=mark, reason=" ")
    assert BadVersion.objects.active().count() == 1
    bad_versions.unmark(user=alice, mark=mark, reason="the config is fixed")
    mark.refresh_from_db()
    assert (mark.unmarked_by, mark.unmark_reason) == (alice, "the config is fixed")
    assert AuditEvent.objects.filter(action="version.unmarked", actor=alice).exists()
    outcome = request_deployment(
        user=bob, service=s.service, environment=s.environment, version=s.bad
    )
    assert outcome.kind == "created", outcome.reason


def test_the_loser_of_two_unmarks_is_told(alice: User, bob: User) -> None:
    s = scene(bob)
    mark = _mark(bob, s)
    stale = BadVersion.objects.get(pk=mark.pk)
    bad_versions.unmark(user=alice, mark=mark, reason="one")
    with pytest.raises(bad_versions.BadVersionError, match="not marked bad any more"):
        bad_versions.unmark(user=alice, mark=stale, reason="two")
    assert BadVersion.objects.get().unmark_reason == "one"


def test_cancelling_a_running_deployment_may_mark_it_bad(bob: User) -> None:
    s = scene(bob)
    running = Deployment.objects.create(
        service=s.service,
        environment=s.environment,
        version=s.bad,
        source_version=s.good,
        deployed_by=bob,
        status="STARTED",
    )
    assert revert_deployment(user=bob, deployment=running, mark_bad="slow") is None
    running.refresh_from_db()
    assert running.status == "PENDING_CANCELLATION"
    assert BadVersion.objects.active().filter(sha=s.bad.git_commit_sha).exists()
