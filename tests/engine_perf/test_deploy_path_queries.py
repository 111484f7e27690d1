"""The deploy request's SQL budget on the instant-pod path (issue #16: POST answered with at
most 8 queries, bob's and an admin's alike): whether any notification subscription covers the
target is read with the target's state, so a target nobody subscribed to costs no outbox
lookup, and a subscribed one still gets its "requested" message."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment, Service
from deployments.notifications.models import Delivery, Subscription
from deployments.notifications.services import save_subscription
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

URL = "/api/v1/deployments/"
SHA = "0123456789abcdef0123456789abcdef01234567"
# Token (with its user), version (with its service), environment, the grants (not for a
# superuser), the target's state (in progress? last version? marked bad? subscribed?), the
# blockers, the deployment, its history event.
CAP = 8
# The Deploy page's POST adds the session, its user and the form's reads (the services and
# environments the user may view, with the view grants, then the chosen rows).
PAGE_CAP = 13


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


def _client(user: User) -> Client:
    client = Client(headers={"Authorization": f"Token {factories.token_for(user)}"})
    client.get(URL)  # the token's last_used_at is written once a minute, not per request
    return client


def _post(client: Client) -> tuple[Any, int]:
    body = {"service": "checkout", "environment": "staging", "git_commit_sha": SHA}
    with CaptureQueriesContext(connection) as queries:
        response = client.post(URL, json.dumps(body), content_type="application/json")
    # Savepoints belong to the test's transaction, not to the request.
    counted = [q for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    return response, len(counted)


def _subscribe(settings: Any, alice: User, **scope: Any) -> Subscription:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    return save_subscription(
        actor=alice,
        subscription=Subscription(name="hook", kind=Subscription.Kind.SLACK, **scope),
        url="http://127.0.0.1:9/hook",
    )


@pytest.mark.parametrize("persona", ["bob", "alice"])
def test_the_post_is_answered_within_eight_queries(
    persona: str, request: pytest.FixtureRequest, checkout: Service, staging: Environment
) -> None:
    user: User = request.getfixturevalue(persona)
    factories.make_version(checkout, SHA)
    response, queries = _post(_client(user))
    assert response.status_code == 201, response.content
    assert queries <= CAP, f"{queries} queries"


def test_a_subscription_to_another_service_costs_bob_no_query(
    settings: Any, alice: User, bob: User, checkout: Service, staging: Environment
) -> None:
    other = factories.make_service("catalog")
    _subscribe(settings, alice, service=other)
    factories.make_version(checkout, SHA)
    response, queries = _post(_client(bob))
    assert response.status_code == 201, response.content
    assert queries <= CAP, f"{queries} queries"
    assert not Delivery.objects.exists()


def test_a_subscriber_of_the_target_still_hears_of_the_request(
    settings: Any, alice: User, bob: User, checkout: Service, staging: Environment
) -> None:
    subscription = _subscribe(settings, alice, environment=staging)
    factories.make_version(checkout, SHA)
    response, _ = _post(_client(bob))
    assert response.status_code == 201, response.content
    delivery = Delivery.objects.get()
    assert (delivery.subscription_id, delivery.event) == (subscription.pk, "requested")
    assert delivery.deployment_id == response.json()["id"]


def test_a_disabled_subscription_hears_nothing(
    settings: Any, alice: User, bob: User, checkout: Service, staging: Environment
) -> None:
    subscription = _subscribe(settings, alice)
    Subscription.objects.filter(pk=subscription.pk).update(enabled=False)
    factories.make_version(checkout, SHA)
    response, queries = _post(_client(bob))
    assert response.status_code == 201, response.content
    assert queries <= CAP, f"{queries} queries"
    assert not Delivery.objects.exists()


def test_the_deploy_page_post_is_answered_within_its_cap(
    bob: User, checkout: Service, staging: Environment
) -> None:
    factories.make_version(checkout, SHA)
    client = login(bob)
    form = {"environments": [staging.pk], "services": [checkout.pk], "version": SHA}
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/deploy/", {**form, "message": "go"})
    assert response.status_code == 302, response.content[:500]
    counted = [q for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(counted) <= PAGE_CAP, f"{len(counted)} queries"
    assert Deployment.objects.filter(service=checkout, deployed_by=bob).count() == 1
