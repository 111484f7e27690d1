"""A version marked bad is announced (event `marked_bad`): by a user with who and why, by Apollo
itself when a failed rollout is reverted automatically, and subscriptions that heard every event
before the event existed hear it too (notifications migration 0002)."""

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User

from deployments.models import RevertPolicy
from deployments.notifications.messages import slack
from deployments.notifications.models import Delivery, Subscription
from deployments.services import bad_versions
from deployments.status import Status
from tests.revert.helpers import scene, started, subscribe

pytestmark = pytest.mark.django_db

migration = importlib.import_module("deployments.notifications.migrations.0002_marked_bad_event")


def test_a_users_mark_is_announced_with_who_and_why(alice: User, bob: User, settings: Any) -> None:
    subscribe(alice, settings, ["marked_bad"])
    s = scene(bob)
    bad_versions.mark_bad(
        user=bob,
        service=s.service,
        environment=s.environment,
        sha=s.bad.git_commit_sha,
        reason="500s on /pay",
        deployment=s.second,
    )
    delivery = Delivery.objects.get()
    mark = delivery.payload["mark"]
    assert delivery.event == "marked_bad"
    assert (mark["marked_by"], mark["reason"], mark["sha"]) == (
        "bob",
        "500s on /pay",
        s.bad.git_commit_sha,
    )
    assert (mark["service"], mark["environment"], mark["deployment"]) == (
        s.service.name,
        s.environment.name,
        s.second.pk,
    )
    assert mark["url"].endswith("/bad-versions/")
    message = slack(delivery.payload)
    assert message["text"] == (
        f"{s.service.name}@{s.bad.git_commit_sha[:12]} in {s.environment.name} was marked bad"
    )
    assert "500s on /pay" in str(message["blocks"])


def test_a_version_bad_already_is_not_announced_twice(
    alice: User, bob: User, settings: Any
) -> None:
    subscribe(alice, settings, ["marked_bad"])
    s = scene(bob)
    for reason in ("first", "second"):
        bad_versions.mark_bad(
            user=bob,
            service=s.service,
            environment=s.environment,
            sha=s.bad.git_commit_sha,
            reason=reason,
        )
    assert Delivery.objects.get().payload["mark"]["reason"] == "first"


def test_apollos_own_mark_is_announced_as_apollos(alice: User, bob: User, settings: Any) -> None:
    subscribe(alice, settings, ["marked_bad"])
    s = scene(bob)
    RevertPolicy.objects.create(environment=s.environment, enabled=True, mark_bad=True)
    failed = started(bob, s, s.bad)
    failed.transition_to(Status.FAILED, reason="pods crash-looping")
    mark = Delivery.objects.get(event="marked_bad").payload["mark"]
    assert (mark["marked_by"], mark["deployment"]) == ("Apollo", failed.pk)
    assert "pods crash-looping" in mark["reason"]


def test_a_subscription_to_other_events_hears_nothing(
    alice: User, bob: User, settings: Any
) -> None:
    subscribe(alice, settings, ["failed", "reverted"])
    s = scene(bob)
    bad_versions.mark_bad(
        user=bob, service=s.service, environment=s.environment, sha=s.bad.git_commit_sha, reason="x"
    )
    assert not Delivery.objects.exists()


def test_subscriptions_to_every_event_before_it_hear_the_new_one(
    alice: User, settings: Any
) -> None:
    everything = subscribe(alice, settings, sorted(migration.EVERY_EVENT_BEFORE))
    some = subscribe(alice, settings, ["failed"])
    migration.subscribe_everything_to_marked_bad(apps, None)
    events = dict(Subscription.objects.values_list("pk", "events"))
    assert "marked_bad" in events[everything.pk]
    assert events[some.pk] == ["failed"]
