"""Environment.concurrency_limit: a cap of deployments in progress at once in an environment,
refused like a blocker (naming what is in progress) through the API and the page alike."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import Deployment
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging", concurrency_limit=1)


def _busy(environment: Environment, user: User) -> Deployment:
    running = factories.make_service("payments")
    return factories.make_deployment(
        service=running, environment=environment, deployed_by=user, status="STARTED"
    )


def _post(user: User, sha: str, **extra: str) -> Any:
    body = {"service": "checkout", "environment": "staging", "git_commit_sha": sha, **extra}
    return Client().post(
        "/api/v1/deployments/",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(user)}"},
    )


def test_bob_is_refused_naming_the_limit_and_what_is_in_progress(
    bob: User, staging: Environment
) -> None:
    _busy(staging, bob)
    version = factories.make_version(factories.make_service("checkout"))
    response = _post(bob, version.git_commit_sha)
    assert response.status_code == 409, response.content
    detail = response.json()["detail"]
    assert "environment concurrency limit of staging" in detail
    assert "at most 1 deployments may be in progress there and 1 are (payments)" in detail
    assert Deployment.objects.count() == 1


def test_under_the_limit_or_without_one_bob_deploys(bob: User, staging: Environment) -> None:
    _busy(staging, bob)
    version = factories.make_version(factories.make_service("checkout"))
    staging.concurrency_limit = 2
    staging.save()
    assert _post(bob, version.git_commit_sha).status_code == 201
    Deployment.objects.filter(service__name="checkout").update(status="DONE")
    staging.concurrency_limit = 0  # no limit
    staging.save()
    assert _post(bob, version.git_commit_sha).status_code == 201


def test_alice_overrides_the_limit_with_a_reason(alice: User, staging: Environment) -> None:
    _busy(staging, alice)
    version = factories.make_version(factories.make_service("checkout"))
    response = _post(alice, version.git_commit_sha, override_reason="hotfix INC-7")
    assert response.status_code == 201, response.content
    created = Deployment.objects.get(pk=response.json()["id"])
    assert created.overridden_blockers[0]["name"] == "environment concurrency limit"


def test_the_deploy_page_names_the_limit(bob: User, staging: Environment) -> None:
    _busy(staging, bob)
    service = factories.make_service("checkout")
    version = factories.make_version(service)
    client = login(bob)
    response = client.post(
        "/deploy/",
        {"environments": [staging.pk], "services": [service.pk], "version": version.git_commit_sha},
        follow=True,
    )
    assert "environment concurrency limit of staging" in response.content.decode()
    assert not Deployment.objects.filter(service=service).exists()
