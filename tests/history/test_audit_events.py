"""The History page's events: every change and action (grants, blockers, groups, services,
environments, clusters, shells, restarts, scaling), each to who may view its service and
environment, filtered by kind, rendered with its diff, in a constant number of queries."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.services.groups import create_group, update_group
from environments.catalog import save_cluster, save_environment
from environments.models import Cluster, Environment
from history.models import AuditEvent
from history.services import record_event
from permissions.models import Blocker
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _actions(user: User, **params: str) -> list[str]:
    response = login(user).get("/history/", {"kind": "events", **params})
    assert response.status_code == 200
    return [
        line.split('data-action="')[1].split('"')[0]
        for line in response.content.decode().splitlines()
        if 'data-action="' in line
    ]


@pytest.fixture
def secret() -> Environment:
    """An environment of an availability none of bob, carol or mallory may view."""
    return factories.make_environment("vault", availability="secret")


def test_each_event_shows_to_who_may_view_its_service_and_environment(
    alice: User, bob: User, carol: User, mallory: User, secret: Environment
) -> None:
    staging = factories.make_environment("qa", availability="staging")
    service = factories.make_service("ingest", deployed_per_group=True)
    create_group(user=alice, service=service, environment=staging, name="eu")
    create_group(user=alice, service=service, environment=secret, name="us")
    record_event(
        actor=bob,
        action="pod.restarted",
        summary="Restarted pod ingest-1 in qa",
        target=staging,
        service=service,
    )
    save_cluster(actor=alice, cluster=Cluster(name="hidden"))
    assert _actions(alice).count("group.created") == 2
    assert "cluster.created" in _actions(alice)
    for persona in (bob, carol):
        seen = _actions(persona)
        assert seen.count("group.created") == 1  # eu in qa; not us in vault
        assert "pod.restarted" in seen
        assert "cluster.created" not in seen  # about no service or environment: managers only
    assert _actions(mallory) == []


def test_events_without_a_service_or_environment_show_to_manage_holders(
    mallory: User, secret: Environment
) -> None:
    save_cluster(actor=None, cluster=Cluster(name="hidden"))
    assert _actions(mallory) == []
    service = factories.make_service("billing")
    grant(actor=None, user=mallory, verbs=[Verb.MANAGE], service=service, environment=secret)
    assert "cluster.created" in _actions(mallory)


def test_the_kind_filter_shows_one_kind(alice: User, secret: Environment) -> None:
    service = factories.make_service("ingest", deployed_per_group=True)
    group = create_group(user=alice, service=service, environment=secret, name="eu")
    update_group(user=alice, group=group, scaling_locked=True, scaling_lock_reason="freeze")
    Blocker.objects.all().delete()
    grant(actor=alice, user=factories.make_user("dave"), verbs=[Verb.VIEW], environment=secret)
    secret.region = "eu-north"
    save_environment(actor=alice, environment=secret)
    assert set(_actions(alice, kind="group")) == {"group.created", "group.changed"}
    assert _actions(alice, kind="grant") == ["grant.created"]
    assert _actions(alice, kind="environment") == ["environment.changed"]
    assert _actions(alice, kind="scaling") == []
    page = login(alice).get("/history/", {"kind": "group"}).content.decode()
    assert "scaling_lock_reason" in page
    assert "freeze" in page
    assert "Show" in page  # the kind select is part of the filter form


def test_a_grant_event_renders_what_changed(alice: User, secret: Environment) -> None:
    dave = factories.make_user("dave")
    grant(actor=alice, user=dave, verbs=[Verb.VIEW, Verb.DEPLOY], environment=secret)
    page = login(alice).get("/history/", {"kind": "grant"}).content.decode()
    assert "Granted: ALLOW view, deploy on environment vault to user dave" in page
    assert '<th scope="row">verbs</th>' in page


def test_an_unknown_kind_is_a_clear_error_not_a_500(alice: User) -> None:
    response = login(alice).get("/history/", {"kind": "nonsense"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_events_page_through_once_newest_first(alice: User) -> None:
    environment = factories.make_environment("qa")
    for i in range(55):
        record_event(
            actor=alice, action="pod.restarted", summary=f"restart {i}", target=environment
        )
    client = login(alice)
    first = client.get("/history/", {"kind": "restart"})
    assert first.context["next_cursor"]
    second = client.get("/history/", {"kind": "restart", "after": first.context["next_cursor"]})
    ids = [v.event.pk for v in first.context["events"]] + [
        v.event.pk for v in second.context["events"]
    ]
    assert ids == list(
        AuditEvent.objects.filter(action="pod.restarted")
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )


def test_its_query_count_does_not_grow_with_events_or_environments(bob: User) -> None:
    def grow() -> None:
        environment = factories.make_environment(availability="staging")
        service = factories.make_service()
        record_event(
            actor=bob,
            action="pod.restarted",
            summary="restart",
            target=environment,
            service=service,
        )
        save_environment(actor=None, environment=environment)

    grow()
    client = login(bob)
    client.get("/history/", {"kind": "events"})
    with CaptureQueriesContext(connection) as few:
        client.get("/history/", {"kind": "events"})
    for _ in range(10):
        grow()
    with CaptureQueriesContext(connection) as many:
        response = client.get("/history/", {"kind": "events"})
    assert len(response.context["events"]) > 10
    assert len(many) == len(few)
