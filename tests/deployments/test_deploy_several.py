"""One sha to several targets in one request, through the API's list form and the Deploy page:
all or nothing (if any target is refused nothing is created, and every refusal is listed)."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import Deployment, Service
from environments.models import Environment
from permissions.models import Blocker
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

URL = "/api/v1/deployments/"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


@pytest.fixture
def production() -> Environment:
    return factories.make_environment("production", availability="production")


@pytest.fixture
def services() -> list[Service]:
    made = [factories.make_service("checkout"), factories.make_service("payments")]
    for service in made:
        factories.make_version(service, SHA)
    return made


def _post(user: User, targets: list[dict[str, str]], **extra: str) -> Any:
    body = {"targets": targets, "git_commit_sha": SHA, **extra}
    return Client().post(
        URL,
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(user)}"},
    )


def _every(names: list[str], environments: list[str]) -> list[dict[str, str]]:
    return [{"service": s, "environment": e} for e in environments for s in names]


def test_alice_deploys_two_services_to_two_environments_in_one_request(
    alice: User, staging: Environment, production: Environment, services: list[Service]
) -> None:
    response = _post(alice, _every(["checkout", "payments"], ["staging", "production"]))
    assert response.status_code == 201, response.content
    body = response.json()
    assert [r["result"] for r in body["results"]] == ["created"] * 4
    assert Deployment.objects.count() == 4
    assert {str(d.batch) for d in Deployment.objects.all()} == {body["batch"]}
    ids = {r["deployment"]["id"] for r in body["results"]}
    assert ids == set(Deployment.objects.values_list("pk", flat=True))


def test_bob_asking_for_production_too_gets_nothing_and_the_refusal(
    bob: User, staging: Environment, production: Environment, services: list[Service]
) -> None:
    response = _post(bob, _every(["checkout"], ["staging", "production"]))
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["detail"] == "Nothing was requested: 1 of 2 targets were refused"
    results = {r["environment"]: r for r in body["results"]}
    assert results["production"]["result"] == "refused"
    assert "production" in results["production"]["detail"]
    assert results["staging"]["result"] == "held"
    assert not Deployment.objects.exists()


def test_every_refusal_is_listed_and_nothing_is_created(
    alice: User, staging: Environment, production: Environment, services: list[Service]
) -> None:
    Blocker.objects.create(name="freeze", kind="unconditional", environment=production)
    strict = factories.make_environment("strict", require_deployment_message=True)
    targets = _every(["checkout"], ["staging", "production", strict.name])
    response = _post(alice, targets)
    assert response.status_code == 400, response.content  # an invalid target is the first kind
    results = {r["environment"]: r for r in response.json()["results"]}
    assert results["production"]["result"] == "blocked"
    assert results["production"]["blockers"][0]["name"] == "freeze"
    assert results["strict"]["result"] == "invalid"
    assert results["strict"]["detail"] == "strict requires a deployment message"
    assert results["staging"]["result"] == "held"
    assert not Deployment.objects.exists()


def test_a_target_in_progress_holds_the_others(
    alice: User, staging: Environment, production: Environment, services: list[Service]
) -> None:
    checkout = services[0]
    running = factories.make_deployment(
        service=checkout, environment=production, deployed_by=alice, status="STARTED"
    )
    response = _post(alice, _every(["checkout"], ["staging", "production"]))
    assert response.status_code == 409, response.content
    kinds = [r["result"] for r in response.json()["results"]]
    assert kinds == ["held", "in_progress"]
    assert list(Deployment.objects.values_list("pk", flat=True)) == [running.pk]


def test_an_unknown_name_in_a_target_is_a_400_naming_it(
    alice: User, staging: Environment, services: list[Service]
) -> None:
    targets = [
        {"service": "checkout", "environment": "staging"},
        {"service": "nope", "environment": "staging"},
    ]
    response = _post(alice, targets)
    assert response.status_code == 400
    assert response.json()["targets"]["1"]["service"] == ["Unknown service 'nope'."]
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("targets", [[], [{"service": "checkout"}], "checkout", [{}] * 51])
def test_a_malformed_list_is_a_400_and_creates_nothing(
    alice: User, staging: Environment, services: list[Service], targets: Any
) -> None:
    response = _post(alice, targets)
    assert response.status_code == 400, response.content
    assert "targets" in response.json()
    assert not Deployment.objects.exists()


def test_the_single_form_still_answers_with_the_deployment(
    alice: User, staging: Environment, services: list[Service]
) -> None:
    body = {"service": "checkout", "environment": "staging", "git_commit_sha": SHA}
    response = Client().post(
        URL,
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(alice)}"},
    )
    assert response.status_code == 201
    assert response.json()["service"] == "checkout"


def test_the_deploy_page_applies_the_same_rule(
    bob: User, staging: Environment, production: Environment, services: list[Service]
) -> None:
    Blocker.objects.create(
        name="freeze", kind="unconditional", environment=staging, service=services[1]
    )
    client = login(bob)
    response = client.post(
        "/deploy/",
        {"environments": [staging.pk], "services": [s.pk for s in services], "version": SHA},
    )
    assert response.status_code == 409
    results = {r.service.name: r.kind for r in response.context["checks"]}
    assert results == {"checkout": "held", "payments": "blocked"}
    page = response.content.decode()
    assert "another target of this request was refused" in page
    assert not Deployment.objects.exists()
