"""The blocker admin: a validated, kind-specific configuration form; history on every change."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from history.models import AuditEvent
from permissions.models import Blocker
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db
ADD = "/admin/permissions/blocker/add/"
LIST = "/admin/permissions/blocker/"


def _form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "the blocker",
        "kind": "unconditional",
        "active": "on",
        "overridable": "on",
        "service": "",
        "environment": "",
        "availability": "",
        "timezone": "UTC",
    }
    data.update(overrides)
    return data


@pytest.fixture
def world() -> None:
    factories.make_service("checkout")
    factories.make_service("cron")
    factories.make_environment("staging-1", availability="staging")
    factories.make_environment("prod", availability="production")


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    ("fields", "config"),
    [
        (
            {"kind": "unconditional", "except_services": ["cron"], "except_environments": ["prod"]},
            {"except_services": ["cron"], "except_environments": ["prod"]},
        ),
        (
            {
                "kind": "time_window",
                "days": ["4", "5"],
                "start": "22:00",
                "end": "02:00",
                "timezone": "Europe/Berlin",
            },
            {"days": [4, 5], "start": "22:00", "end": "02:00", "timezone": "Europe/Berlin"},
        ),
        (
            {"kind": "branch", "patterns": "main\nrelease/*\n"},
            {"patterns": ["main", "release/*"]},
        ),
        (
            {
                "kind": "concurrency",
                "max_in_progress": "2",
                "concurrency_except_services": ["cron"],
            },
            {"max_in_progress": 2, "except_services": ["cron"]},
        ),
        (
            {"kind": "ci_status", "required_contexts": "jenkins/unit, jenkins/e2e"},
            {"required_contexts": ["jenkins/unit", "jenkins/e2e"]},
        ),
        ({"kind": "single_region"}, {}),
        (
            {"kind": "promotion", "from_environment": "staging-1", "min_minutes": "30"},
            {"from_environment": "staging-1", "min_minutes": 30},
        ),
    ],
)
def test_alice_creates_every_kind_and_the_config_is_stored_and_recorded(
    alice: User, fields: dict[str, Any], config: dict[str, Any]
) -> None:
    response = login(alice).post(ADD, _form(availability="production", **fields))
    assert response.status_code == 302, response.context["adminform"].form.errors
    blocker = Blocker.objects.get()
    assert blocker.config == config
    assert blocker.availability == "production"
    event = AuditEvent.objects.get(action="blocker.created")
    assert event.actor == alice
    assert event.data["after"]["config"] == config


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "time_window", "start": "12:00", "end": "13:00"}, "days must be a non-empty"),
        ({"kind": "time_window", "days": ["4"], "end": "13:00"}, "start must be a time"),
        (
            {
                "kind": "time_window",
                "days": ["4"],
                "start": "12:00",
                "end": "13:00",
                "timezone": "Mars/Base",
            },
            "unknown time zone",
        ),
        (
            {"kind": "time_window", "days": ["4"], "start": "12:00", "end": "12:00"},
            "start and end must differ",
        ),
        ({"kind": "branch", "patterns": "  "}, "patterns must not be empty"),
        ({"kind": "concurrency"}, "max_in_progress must be a whole number"),
        ({"kind": "concurrency", "max_in_progress": "0"}, "greater than or equal to 1"),
        ({"kind": "promotion"}, "from_environment must name an environment"),
        ({"kind": "unconditional", "environment": "ENV", "availability": "production"}, "not both"),
    ],
)
def test_the_form_refuses_a_configuration_that_cannot_work(
    alice: User, fields: dict[str, Any], message: str
) -> None:
    if fields.get("environment") == "ENV":
        fields["environment"] = factories.make_environment("qa").pk
    response = login(alice).post(ADD, _form(**fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Blocker.objects.exists()


def test_the_change_form_shows_the_stored_config_and_saving_records_before_and_after(
    alice: User, bob: User
) -> None:
    blocker = Blocker.objects.create(
        name="Friday freeze",
        kind=Blocker.Kind.TIME_WINDOW,
        config={"days": [4], "start": "12:00", "end": "23:59", "timezone": "Europe/Berlin"},
    )
    client = login(alice)
    form = client.get(f"{LIST}{blocker.pk}/change/").context["adminform"].form
    assert form.initial["days"] == [4]
    assert form.initial["timezone"] == "Europe/Berlin"
    response = client.post(
        f"{LIST}{blocker.pk}/change/",
        _form(
            name="Friday freeze",
            kind="time_window",
            days=["4"],
            start="14:00",
            end="23:59",
            timezone="Europe/Berlin",
            exempt_users=[bob.pk],
        ),
    )
    assert response.status_code == 302
    blocker.refresh_from_db()
    assert blocker.config["start"] == "14:00"
    assert list(blocker.exempt_users.all()) == [bob]
    event = AuditEvent.objects.get(action="blocker.changed")
    assert event.data["before"]["config"]["start"] == "12:00"
    assert event.data["after"]["exempt_users"] == ["bob"]


def test_deleting_a_blocker_is_recorded(alice: User) -> None:
    blocker = Blocker.objects.create(name="Freeze", kind=Blocker.Kind.UNCONDITIONAL)
    response = login(alice).post(f"{LIST}{blocker.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Blocker.objects.exists()
    assert AuditEvent.objects.get(action="blocker.deleted").actor == alice


def test_the_list_searches_and_filters(alice: User) -> None:
    env = factories.make_environment("prod", availability="production")
    freeze = Blocker.objects.create(name="Freeze", kind=Blocker.Kind.UNCONDITIONAL, environment=env)
    ci = Blocker.objects.create(name="CI", kind=Blocker.Kind.CI_STATUS, active=False)
    client = login(alice)

    def listed(**params: str) -> set[int]:
        return {b.pk for b in client.get(LIST, params).context["cl"].result_list}

    assert listed(q="prod") == {freeze.pk}
    assert listed(kind__exact="ci_status") == {ci.pk}
    assert listed(active__exact="1") == {freeze.pk}
