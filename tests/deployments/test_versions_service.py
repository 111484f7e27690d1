from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError

from deployments.models import CIStatus, DeployableVersion, Service
from deployments.services import versions
from deployments.services.versions import (
    VersionError,
    VersionNotFound,
    register_version,
    report_ci_status,
)
from history.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db

SHA = "a" * 40


def test_it_registers_a_version_with_its_metadata(jenkins: User, checkout: Service) -> None:
    committed = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    version, created = register_version(
        actor=jenkins,
        service_name="checkout",
        git_commit_sha=SHA,
        branch="main",
        commit_message="Fix the basket\n\nlong body",
        commit_author="Dev <dev@example.com>",
        commit_url=f"https://git.example.com/checkout/commit/{SHA}",
        repository_url="https://git.example.com/checkout",
        committed_at=committed,
    )
    assert created
    version.refresh_from_db()
    assert (version.service, version.git_commit_sha, version.branch) == (checkout, SHA, "main")
    assert version.commit_message == "Fix the basket\n\nlong body"
    assert version.committed_at == committed


def test_it_records_the_registration_in_history(jenkins: User, checkout: Service) -> None:
    version, _ = register_version(actor=jenkins, service_name="checkout", git_commit_sha=SHA)
    event = AuditEvent.objects.get(action="version.registered")
    assert (event.actor, event.target_id) == (jenkins, str(version.pk))
    assert "checkout@aaaaaaaaaaaa" in event.summary


def test_a_repeat_returns_the_same_row_without_a_second_event(
    jenkins: User, checkout: Service
) -> None:
    first, _ = register_version(actor=jenkins, service_name="checkout", git_commit_sha=SHA)
    again, created = register_version(actor=jenkins, service_name="checkout", git_commit_sha=SHA)
    assert (again.pk, created) == (first.pk, False)
    assert DeployableVersion.objects.count() == 1
    assert AuditEvent.objects.filter(action="version.registered").count() == 1


def test_a_repeat_fills_empty_fields_but_never_overwrites(jenkins: User, checkout: Service) -> None:
    register_version(actor=jenkins, service_name="checkout", git_commit_sha=SHA, branch="main")
    version, created = register_version(
        actor=jenkins,
        service_name="checkout",
        git_commit_sha=SHA,
        branch="evil",
        commit_message="now with a message",
    )
    assert not created
    assert (version.branch, version.commit_message) == ("main", "now with a message")
    event = AuditEvent.objects.get(action="version.updated")
    assert event.data == {"filled": ["commit_message"]}


def test_a_repeat_with_nothing_new_writes_nothing(jenkins: User, checkout: Service) -> None:
    register_version(actor=jenkins, service_name="checkout", git_commit_sha=SHA, branch="main")
    register_version(actor=jenkins, service_name="checkout", git_commit_sha=SHA, branch="other")
    assert not AuditEvent.objects.filter(action="version.updated").exists()


def test_it_normalises_an_upper_case_sha(jenkins: User, checkout: Service) -> None:
    version, _ = register_version(
        actor=jenkins, service_name="checkout", git_commit_sha=f" {'AB' * 20}\n"
    )
    assert version.git_commit_sha == "ab" * 20


@pytest.mark.parametrize("sha", ["", "abc1234", "g" * 40, "a" * 41, "a" * 39, "a" * 20 + " " * 20])
def test_it_refuses_what_is_not_a_full_sha(jenkins: User, checkout: Service, sha: str) -> None:
    with pytest.raises(VersionError) as caught:
        register_version(actor=jenkins, service_name="checkout", git_commit_sha=sha)
    assert caught.value.field == "git_commit_sha"
    assert "40 hex digits" in caught.value.message
    assert not DeployableVersion.objects.exists()


def test_it_refuses_an_unknown_service_naming_it(jenkins: User, checkout: Service) -> None:
    with pytest.raises(VersionError) as caught:
        register_version(actor=jenkins, service_name="nope", git_commit_sha=SHA)
    assert (caught.value.field, caught.value.message) == ("service", "Unknown service 'nope'.")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("commit_url", "javascript:alert(1)"),
        ("repository_url", "not a url"),
        ("branch", "b" * 256),
        ("commit_author", "a" * 256),
    ],
)
def test_it_refuses_bad_metadata_naming_the_field(
    jenkins: User, checkout: Service, field: str, value: str
) -> None:
    metadata: dict[str, Any] = {field: value}
    with pytest.raises(VersionError) as caught:
        register_version(actor=jenkins, service_name="checkout", git_commit_sha=SHA, **metadata)
    assert caught.value.field == field
    assert not DeployableVersion.objects.exists()
    assert not AuditEvent.objects.exclude(action__startswith="token.").exists()


def test_it_refuses_a_naive_commit_time(jenkins: User, checkout: Service) -> None:
    with pytest.raises(VersionError) as caught:
        register_version(
            actor=jenkins,
            service_name="checkout",
            git_commit_sha=SHA,
            committed_at=datetime(2025, 1, 1, 12, 0),  # naive: the point of the test
        )
    assert caught.value.field == "committed_at"


def test_it_keeps_an_aware_commit_time_in_any_zone(jenkins: User, checkout: Service) -> None:
    committed = datetime(2025, 1, 1, 12, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Kolkata"))
    version, _ = register_version(
        actor=jenkins, service_name="checkout", git_commit_sha=SHA, committed_at=committed
    )
    version.refresh_from_db()
    assert version.committed_at == committed
    assert version.committed_at is not None
    assert version.committed_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
def test_it_refuses_users_without_the_permission(
    personas: dict[str, User], persona: str, checkout: Service
) -> None:
    with pytest.raises(PermissionDenied):
        register_version(actor=personas[persona], service_name="checkout", git_commit_sha=SHA)
    assert not DeployableVersion.objects.exists()


def test_superusers_and_the_system_may_register(alice: User, checkout: Service) -> None:
    assert register_version(actor=alice, service_name="checkout", git_commit_sha=SHA)[1]
    _, created = register_version(actor=None, service_name="checkout", git_commit_sha="b" * 40)
    assert created
    assert (
        AuditEvent.objects.exclude(action__startswith="token.").filter(actor_name="system").count()
        == 1
    )


def test_an_inactive_holder_of_the_permission_is_refused(jenkins: User, checkout: Service) -> None:
    jenkins.is_active = False
    jenkins.save()
    with pytest.raises(PermissionDenied):
        register_version(actor=jenkins, service_name="checkout", git_commit_sha=SHA)


def test_losing_a_race_on_the_unique_sha_returns_the_winner(
    jenkins: User, checkout: Service
) -> None:
    winner = factories.make_version(checkout, SHA)
    real_existing = versions._existing
    calls: list[int] = []

    def first_miss(service: Service, sha: str) -> DeployableVersion | None:
        # The first look-up runs "before" the other registration committed.
        calls.append(1)
        return None if len(calls) == 1 else real_existing(service, sha)

    with mock.patch.object(versions, "_existing", side_effect=first_miss):
        version, created = register_version(
            actor=jenkins, service_name="checkout", git_commit_sha=SHA
        )
    assert (version.pk, created) == (winner.pk, False)
    assert DeployableVersion.objects.count() == 1
    assert not AuditEvent.objects.exclude(action__startswith="token.").exists()


def test_a_failing_history_write_leaves_no_version(jenkins: User, checkout: Service) -> None:
    with (
        mock.patch.object(versions, "record_event", side_effect=IntegrityError("boom")),
        pytest.raises(IntegrityError),
    ):
        register_version(actor=jenkins, service_name="checkout", git_commit_sha=SHA)
    assert not DeployableVersion.objects.exists()


def test_it_reports_and_replaces_a_ci_status(jenkins: User, checkout: Service) -> None:
    factories.make_version(checkout, SHA)
    first, created = report_ci_status(
        actor=jenkins, service_name="checkout", git_commit_sha=SHA, state="pending"
    )
    assert (created, first.context, first.state) == (True, "ci", "pending")
    second, created = report_ci_status(
        actor=jenkins,
        service_name="checkout",
        git_commit_sha=SHA.upper(),
        state="success",
        url="https://ci.example.com/job/1",
    )
    assert (created, second.pk, second.state) == (False, first.pk, "success")
    assert CIStatus.objects.count() == 1
    assert AuditEvent.objects.filter(action="version.ci_status").count() == 2


def test_a_ci_status_for_an_unregistered_version_is_not_found(
    jenkins: User, checkout: Service
) -> None:
    with pytest.raises(VersionNotFound, match=r"checkout@a{40} is registered"):
        report_ci_status(actor=jenkins, service_name="checkout", git_commit_sha=SHA, state="error")
    assert not CIStatus.objects.exists()


def test_a_ci_status_with_an_unknown_state_is_refused(jenkins: User, checkout: Service) -> None:
    factories.make_version(checkout, SHA)
    with pytest.raises(VersionError) as caught:
        report_ci_status(actor=jenkins, service_name="checkout", git_commit_sha=SHA, state="ok")
    assert caught.value.field == "state"


def test_mallory_may_not_report_a_ci_status(mallory: User, checkout: Service) -> None:
    factories.make_version(checkout, SHA)
    with pytest.raises(PermissionDenied):
        report_ci_status(actor=mallory, service_name="checkout", git_commit_sha=SHA, state="error")
