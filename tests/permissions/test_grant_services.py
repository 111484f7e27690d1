"""permissions.services grant / save_grant / revoke_grant: guardian rows and history."""

from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError

from history.models import AuditEvent
from permissions.models import Grant, GrantGroupObjectPermission, GrantUserObjectPermission
from permissions.services import grant, grant_holder, grant_verbs, revoke_grant, save_grant
from permissions.verbs import Effect, Verb
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_grant_is_stored_as_guardian_object_permissions_on_the_grant(
    alice: User, mallory: User
) -> None:
    env = factories.make_environment("prod", availability="production")
    created = grant(actor=alice, user=mallory, verbs=[Verb.DEPLOY, Verb.EXEC], environment=env)
    rows = GrantUserObjectPermission.objects.filter(content_object=created, user=mallory)
    assert sorted(rows.values_list("permission__codename", flat=True)) == ["deploy", "exec"]
    # guardian's backend reads the same rows: the verbs are object permissions on the grant.
    assert mallory.has_perm("permissions.deploy", created)
    assert not mallory.has_perm("permissions.manage", created)


def test_a_group_grant_is_stored_in_the_group_rows(alice: User) -> None:
    devs = Group.objects.create(name="devs")
    created = grant(actor=alice, group=devs, verbs=[Verb.VIEW_LOGS], availability="staging")
    assert (
        GrantGroupObjectPermission.objects.filter(content_object=created, group=devs).count() == 1
    )
    assert grant_holder(created) == devs
    assert grant_verbs(created) == ["view_logs"]


def test_granting_records_who_granted_what_to_whom(alice: User, mallory: User) -> None:
    svc = factories.make_service("checkout")
    created = grant(
        actor=alice, user=mallory, verbs=[Verb.RESTART], effect=Effect.DENY, service=svc
    )
    event = AuditEvent.objects.get(action="grant.created")
    assert event.actor == alice
    assert event.target_id == str(created.pk)
    assert event.summary == "Granted: DENY restart on service checkout to user mallory"
    assert event.data["after"]["verbs"] == ["restart"]
    assert event.data["before"] is None


def test_changing_a_grant_records_before_and_after(alice: User, mallory: User, carol: User) -> None:
    created = grant(actor=alice, user=mallory, verbs=[Verb.DEPLOY], availability="staging")
    created.effect = Effect.DENY
    save_grant(actor=alice, grant=created, holder=carol, verbs=[Verb.EXEC, Verb.MANAGE])
    event = AuditEvent.objects.get(action="grant.changed")
    assert event.data["before"]["holder"] == "user mallory"
    assert event.data["before"]["effect"] == "ALLOW"
    assert event.data["after"] == {
        "effect": "DENY",
        "scope": "availability staging",
        "holder": "user carol",
        "verbs": ["exec", "manage"],
        "note": "",
    }
    assert not GrantUserObjectPermission.objects.filter(user=mallory).exists()


def test_revoking_deletes_the_grant_and_its_rows_and_records_it(alice: User, mallory: User) -> None:
    created = grant(actor=alice, user=mallory, verbs=[Verb.DEPLOY], availability="staging")
    revoke_grant(actor=alice, grant=created)
    assert not Grant.objects.exists()
    assert not GrantUserObjectPermission.objects.exists()
    event = AuditEvent.objects.get(action="grant.revoked")
    assert event.actor == alice
    assert "from user mallory" in event.summary


def test_a_failing_history_write_leaves_no_grant_behind(alice: User, mallory: User) -> None:
    with (
        mock.patch("permissions.services.record_event", side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError),
    ):
        grant(actor=alice, user=mallory, verbs=[Verb.DEPLOY], availability="staging")
    assert not Grant.objects.exists()
    assert not GrantUserObjectPermission.objects.exists()


def test_it_wants_exactly_one_holder(alice: User, mallory: User) -> None:
    devs = Group.objects.create(name="devs")
    with pytest.raises(ValueError, match="exactly one"):
        grant(actor=alice, user=mallory, group=devs, verbs=[Verb.DEPLOY], availability="x")
    with pytest.raises(ValueError, match="exactly one"):
        grant(actor=alice, verbs=[Verb.DEPLOY], availability="x")


def test_it_wants_at_least_one_verb(alice: User, mallory: User) -> None:
    with pytest.raises(ValueError, match="verb"):
        grant(actor=alice, user=mallory, verbs=[], availability="staging")
    assert not Grant.objects.exists()


@pytest.mark.parametrize(
    "shape", ["nothing", "service_and_availability", "environment_and_availability"]
)
def test_it_refuses_a_scope_that_is_not_one_of_the_four(
    alice: User, mallory: User, shape: str
) -> None:
    kwargs: dict[str, object] = {
        "nothing": {},
        "service_and_availability": {"service": factories.make_service(), "availability": "prod"},
        "environment_and_availability": {
            "environment": factories.make_environment(),
            "availability": "prod",
        },
    }[shape]
    with pytest.raises(ValidationError, match="exactly one scope"):
        grant(actor=alice, user=mallory, verbs=[Verb.DEPLOY], **kwargs)  # type: ignore[arg-type]
    assert not Grant.objects.exists()
