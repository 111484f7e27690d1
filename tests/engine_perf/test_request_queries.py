"""The deploy request's SQL budget (issue #16): POST /api/v1/deployments/ answers with a fixed,
small number of queries (at most 8, bob's and an admin's alike), whatever the history of the
target holds. Whether any notification subscription covers the target is read with the
target's state, so a target nobody subscribed to costs no outbox lookup, and a subscribed one
still gets its "requested" message."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import Deployment, Service
from deployments.notifications.models import Delivery, Subscription
from deployments.notifications.services import save_subscription
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

URL = "/api/v1/deployments/"
SHA = "0123456789abcdef0123456789abcdef01234567"
# Token, version with its service, environment, blockers, the target's state (in progress?
# the version it ran last, whether anybody subscribed), the deployment, its history event;
# and the grants for a user who is not a superuser.
SUPERUSER_CAP = 8
GRANTED_USER_CAP = 8
# The Deploy page's POST adds the session and its user, and its form's reads: the services
# and environments the user may view (with the view grants), then the chosen rows.
PAGE_CAP = 13


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


def _client(user: User) -> Client:
    client = Client(headers={"Authorization": f"Token {factories.token_for(user)}"})
    client.get(URL)  # the token's last_used_at is written once a minute, not per request
    return client


def _post(client: Client, body: dict[str, Any]) -> tuple[Any, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(URL, json.dumps(body), content_type="application/json")
    # Savepoints belong to the test's transaction, not to the request.
    counted = [q for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    return response, len(counted)


def _with_history(service: Service, environment: Environment, user: User, count: int) -> None:
    for _ in range(count):
        version = factories.make_version(service)
        Deployment.objects.create(
            service=service,
            environment=environment,
            version=version,
            deployed_by=user,
            status=Status.DONE,
            finished_at=timezone.now(),
        )


def _subscribe(settings: Any, alice: User, **scope: Any) -> Subscription:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    return save_subscription(
        actor=alice,
        subscription=Subscription(name="hook", kind=Subscription.Kind.SLACK, **scope),
        url="http://127.0.0.1:9/hook",
    )


BODY = {"service": "checkout", "environment": "staging", "git_commit_sha": SHA}


@pytest.mark.parametrize("history", [0, 20])
def test_bob_is_answered_within_the_query_cap_whatever_the_history(
    bob: User, checkout: Service, staging: Environment, history: int
) -> None:
    _with_history(checkout, staging, bob, history)
    factories.make_version(checkout, SHA)
    body = {"service": "checkout", "environment": "staging", "git_commit_sha": SHA}
    response, queries = _post(_client(bob), body)
    assert response.status_code == 201, response.content
    assert queries <= GRANTED_USER_CAP, f"{queries} queries"


def test_an_admin_is_answered_within_eight_queries(
    alice: User, checkout: Service, staging: Environment
) -> None:
    factories.make_version(checkout, SHA)
    body = {"service": "checkout", "environment": "staging", "git_commit_sha": SHA}
    response, queries = _post(_client(alice), body)
    assert response.status_code == 201, response.content
    assert queries <= SUPERUSER_CAP, f"{queries} queries"


def test_the_deployment_records_the_version_the_target_ran_before(
    bob: User, checkout: Service, staging: Environment
) -> None:
    _with_history(checkout, staging, bob, 3)
    last = Deployment.objects.latest("finished_at")
    factories.make_version(checkout, SHA)
    body = {"service": "checkout", "environment": "staging", "git_commit_sha": SHA}
    response = _client(bob).post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    created = Deployment.objects.get(pk=response.json()["id"])
    assert created.source_version_id == last.version_id


def test_a_second_request_while_one_is_in_progress_is_refused_and_changes_nothing(
    bob: User, checkout: Service, staging: Environment
) -> None:
    factories.make_version(checkout, SHA)
    body = {"service": "checkout", "environment": "staging", "git_commit_sha": SHA}
    client = _client(bob)
    assert client.post(URL, json.dumps(body), content_type="application/json").status_code == 201
    response, _ = _post(client, body)
    assert response.status_code == 409
    assert "already in progress" in response.json()["detail"]
    assert Deployment.objects.filter(service=checkout).count() == 1


def test_an_unknown_service_and_an_unknown_version_are_told_apart(
    bob: User, checkout: Service, staging: Environment
) -> None:
    client = _client(bob)
    unknown = {"service": "nope", "environment": "staging", "git_commit_sha": SHA}
    response = client.post(URL, json.dumps(unknown), content_type="application/json")
    assert response.status_code == 400
    assert "service" in response.json()
    missing = {"service": "checkout", "environment": "staging", "git_commit_sha": SHA}
    response = client.post(URL, json.dumps(missing), content_type="application/json")
    assert response.status_code == 400
    assert "git_commit_sha" in response.json()
    assert not Deployment.objects.exists()


def test_the_deploy_page_answers_bob_within_its_query_cap(
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


def test_a_subscription_to_another_service_costs_bob_no_query(
    settings: Any, alice: User, bob: User, checkout: Service, staging: Environment
) -> None:
    _subscribe(settings, alice, service=factories.make_service("catalog"))
    factories.make_version(checkout, SHA)
    response, queries = _post(_client(bob), BODY)
    assert response.status_code == 201, response.content
    assert queries <= GRANTED_USER_CAP, f"{queries} queries"
    assert not Delivery.objects.exists()


def test_a_subscriber_of_the_target_still_hears_of_the_request(
    settings: Any, alice: User, bob: User, checkout: Service, staging: Environment
) -> None:
    subscription = _subscribe(settings, alice, environment=staging)
    factories.make_version(checkout, SHA)
    response, _ = _post(_client(bob), BODY)
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
    response, queries = _post(_client(bob), BODY)
    assert response.status_code == 201, response.content
    assert queries <= GRANTED_USER_CAP, f"{queries} queries"
    assert not Delivery.objects.exists()
