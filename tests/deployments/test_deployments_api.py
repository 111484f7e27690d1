import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django import DjangoAssertNumQueries

from deployments.models import DeployableVersion, Deployment, Group, Service
from deployments.status import Status
from environments.models import Environment
from history.models import AuditEvent
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
def version(checkout: Service) -> DeployableVersion:
    return factories.make_version(checkout, SHA, branch="main")


def auth(user: User) -> dict[str, str]:
    return {"Authorization": f"Token {factories.token_for(user)}"}


def post(body: Any, user: User | None = None, url: str = URL) -> Any:
    headers = auth(user) if user is not None else {}
    return Client().post(url, json.dumps(body), content_type="application/json", headers=headers)


def get(url: str, user: User) -> Any:
    return Client().get(url, headers=auth(user))


def deploy_body(**extra: str) -> dict[str, str]:
    return {"service": "checkout", "environment": "staging", "git_commit_sha": SHA, **extra}


def test_alice_requests_a_deployment_with_201(
    alice: User, version: DeployableVersion, staging: Environment
) -> None:
    response = post(deploy_body(message="first release"), alice)
    assert response.status_code == 201, response.content
    deployment = Deployment.objects.get()
    body = response.json()
    assert body["id"] == deployment.pk
    assert body["status"] == "PENDING"
    assert (body["service"], body["environment"], body["group"]) == ("checkout", "staging", None)
    assert (body["git_commit_sha"], body["message"]) == (SHA, "first release")
    assert body["deployed_by"] == "alice"
    assert body["url"] == f"http://testserver/deployments/{deployment.pk}/"
    assert body["created_at"]
    assert response["Location"] == f"/api/v1/deployments/{deployment.pk}/"
    assert AuditEvent.objects.filter(action="deployment.requested", actor=alice).exists()


def test_bob_deploys_to_staging_by_token(
    bob: User, version: DeployableVersion, staging: Environment
) -> None:
    response = post(deploy_body(git_commit_sha=SHA.upper()), bob)
    assert response.status_code == 201, response.content
    assert Deployment.objects.get().deployed_by == bob


def test_bob_is_refused_production_with_the_explanation(
    bob: User, version: DeployableVersion, production: Environment
) -> None:
    response = post(deploy_body(environment="production"), bob)
    assert response.status_code == 403
    assert response.json()["detail"]
    assert "production" in response.json()["detail"]
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("persona", ["carol", "mallory"])
def test_it_refuses_personas_without_the_deploy_verb(
    personas: dict[str, User], persona: str, version: DeployableVersion, staging: Environment
) -> None:
    response = post(deploy_body(), personas[persona])
    assert response.status_code == 403
    assert response.json()["detail"]
    assert not Deployment.objects.exists()


def test_jenkins_may_register_versions_but_not_deploy(
    jenkins: User, version: DeployableVersion, staging: Environment
) -> None:
    assert post(deploy_body(), jenkins).status_code == 403
    assert not Deployment.objects.exists()


def test_it_answers_401_without_a_token(version: DeployableVersion, staging: Environment) -> None:
    assert post(deploy_body()).status_code == 401
    assert Client().get(URL).status_code == 401


@pytest.mark.parametrize(
    ("extra", "errors"),
    [
        ({"service": "nope"}, {"service": ["Unknown service 'nope'."]}),
        ({"environment": "nope"}, {"environment": ["Unknown environment 'nope'."]}),
        (
            {"git_commit_sha": "f" * 40},
            {"git_commit_sha": [f"No deployable version checkout@{'f' * 40} is registered."]},
        ),
        (
            {"git_commit_sha": SHA[:7]},
            {"git_commit_sha": ["'0123456' is not a full git commit sha (40 hex digits)."]},
        ),
        ({"group": "eu"}, {"group": ["checkout has no group 'eu' in staging."]}),
    ],
)
def test_unknown_names_answer_400_naming_the_field(
    alice: User,
    version: DeployableVersion,
    staging: Environment,
    extra: dict[str, str],
    errors: dict[str, list[str]],
) -> None:
    response = post(deploy_body(**extra), alice)
    assert response.status_code == 400
    assert response.json() == errors
    assert not Deployment.objects.exists()


def test_missing_fields_answer_400(alice: User) -> None:
    response = post({}, alice)
    assert response.status_code == 400
    assert set(response.json()) == {"service", "environment", "git_commit_sha"}


def test_a_version_of_another_service_is_unknown(
    alice: User, version: DeployableVersion, staging: Environment
) -> None:
    factories.make_service("payments")
    response = post(deploy_body(service="payments"), alice)
    assert response.status_code == 400
    assert list(response.json()) == ["git_commit_sha"]


def test_a_required_message_missing_answers_400(alice: User, version: DeployableVersion) -> None:
    factories.make_environment("staging", require_deployment_message=True)
    response = post(deploy_body(), alice)
    assert response.status_code == 400
    assert response.json() == {"detail": "staging requires a deployment message"}


def test_it_deploys_a_group(alice: User, version: DeployableVersion, staging: Environment) -> None:
    Group.objects.create(service=version.service, environment=staging, name="eu")
    response = post(deploy_body(group="eu"), alice)
    assert response.status_code == 201, response.content
    assert response.json()["group"] == "eu"


def test_a_blocked_deployment_answers_409_naming_each_blocker(
    bob: User, version: DeployableVersion, staging: Environment
) -> None:
    Blocker.objects.create(name="freeze", kind=Blocker.Kind.UNCONDITIONAL, availability="staging")
    Blocker.objects.create(
        name="release-branches", kind=Blocker.Kind.BRANCH, config={"patterns": ["release/*"]}
    )
    response = post(deploy_body(), bob)
    assert response.status_code == 409
    body = response.json()
    assert body["detail"].startswith("The deployment is blocked: ")
    assert [b["name"] for b in body["blockers"]] == ["freeze", "release-branches"]
    assert all(b["kind"] and b["reason"] for b in body["blockers"])
    assert "freeze" in body["blockers"][0]["reason"]
    assert body["may_override"] is False
    assert not Deployment.objects.exists()


def test_an_override_reason_deploys_past_the_blocker(
    alice: User, version: DeployableVersion, staging: Environment
) -> None:
    Blocker.objects.create(name="freeze", kind=Blocker.Kind.UNCONDITIONAL)
    blocked = post(deploy_body(), alice)
    assert blocked.status_code == 409
    assert blocked.json()["may_override"] is True
    response = post(deploy_body(override_reason="hotfix for the outage"), alice)
    assert response.status_code == 201, response.content
    assert Deployment.objects.get().override_reason == "hotfix for the outage"


def test_a_second_request_while_one_is_in_progress_answers_409(
    alice: User, version: DeployableVersion, staging: Environment
) -> None:
    assert post(deploy_body(), alice).status_code == 201
    response = post(deploy_body(), alice)
    assert response.status_code == 409
    assert "already in progress" in response.json()["detail"]
    assert Deployment.objects.count() == 1


def test_a_body_over_64_kib_answers_413(alice: User, staging: Environment) -> None:
    assert post(deploy_body(message="x" * 70_000), alice).status_code == 413


@pytest.fixture
def deployment(alice: User, version: DeployableVersion, staging: Environment) -> Deployment:
    return factories.make_deployment(
        service=version.service,
        environment=staging,
        version=version,
        deployed_by=alice,
        message="first release",
        status=Status.PENDING,
    )


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
def test_every_persona_who_may_view_reads_a_deployment(
    personas: dict[str, User], persona: str, deployment: Deployment
) -> None:
    response = get(f"{URL}{deployment.pk}/", personas[persona])
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["message"]) == (
        deployment.pk,
        "PENDING",
        "first release",
    )
    assert body["git_commit_sha"] == SHA


def test_an_unknown_deployment_answers_404(alice: User) -> None:
    response = get(f"{URL}999999/", alice)
    assert response.status_code == 404
    assert response.json() == {"detail": "No deployment #999999."}


def test_reading_needs_a_token_or_a_session_and_the_view_verb(
    deployment: Deployment, carol: User
) -> None:
    assert Client().get(f"{URL}{deployment.pk}/").status_code == 401
    assert login(carol).get(f"{URL}{deployment.pk}/").status_code == 200
    # Signed in without view there: as if it did not exist.
    assert login(factories.make_user("dave")).get(f"{URL}{deployment.pk}/").status_code == 404


def make_history(alice: User, count: int, **extra: Any) -> list[Deployment]:
    service = Service.objects.get(name="checkout")
    return [
        factories.make_deployment(
            service=service,
            environment=extra.get("environment") or Environment.objects.get(name="staging"),
            deployed_by=alice,
            status=extra.get("status", Status.DONE),
        )
        for _ in range(count)
    ]


def test_the_list_is_newest_first(alice: User, checkout: Service, staging: Environment) -> None:
    made = make_history(alice, 3)
    response = get(URL, alice)
    assert response.status_code == 200
    assert [d["id"] for d in response.json()["results"]] == [d.pk for d in reversed(made)]


def test_the_list_filters_by_service_environment_and_status(
    alice: User, checkout: Service, staging: Environment, production: Environment
) -> None:
    [in_staging] = make_history(alice, 1)
    [in_production] = make_history(alice, 1, environment=production)
    [failed] = make_history(alice, 1, status=Status.FAILED)
    other = factories.make_deployment(
        service=factories.make_service("payments"), environment=staging, deployed_by=alice
    )

    def ids(query: str) -> list[int]:
        response = get(f"{URL}?{query}", alice)
        assert response.status_code == 200
        return [d["id"] for d in response.json()["results"]]

    assert ids("service=checkout") == [failed.pk, in_production.pk, in_staging.pk]
    assert ids("environment=production") == [in_production.pk]
    assert ids("status=FAILED") == [failed.pk]
    assert ids("service=payments&environment=staging") == [other.pk]
    assert ids("service=checkout&environment=staging&status=DONE") == [in_staging.pk]
    assert ids("service=nope") == []


def test_an_unknown_status_filter_answers_400(alice: User) -> None:
    response = get(f"{URL}?status=BROKEN", alice)
    assert response.status_code == 400
    assert list(response.json()) == ["status"]


def test_the_list_is_paginated(alice: User, checkout: Service, staging: Environment) -> None:
    made = make_history(alice, 5)
    first = get(f"{URL}?page_size=2", alice).json()
    assert [d["id"] for d in first["results"]] == [made[4].pk, made[3].pk]
    assert first["previous"] is None
    second = get(first["next"], alice).json()
    assert [d["id"] for d in second["results"]] == [made[2].pk, made[1].pk]
    third = get(second["next"], alice).json()
    assert [d["id"] for d in third["results"]] == [made[0].pk]
    assert third["next"] is None


def test_the_list_costs_the_same_queries_for_many_deployments(
    alice: User,
    checkout: Service,
    staging: Environment,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    headers = auth(alice)
    client = Client()
    make_history(alice, 2)
    client.get(URL, headers=headers)  # the token's first use records last_used_at once
    with django_assert_num_queries(2):  # the token (with its user), then one page
        assert client.get(URL, headers=headers).status_code == 200
    make_history(alice, 20)
    with django_assert_num_queries(2):
        response = client.get(URL, headers=headers)
    assert len(response.json()["results"]) == 22


def cancel(deployment: Deployment, user: User) -> Any:
    return post({}, user, url=f"{URL}{deployment.pk}/cancel/")


def test_bob_cancels_a_pending_staging_deployment(bob: User, deployment: Deployment) -> None:
    response = cancel(deployment, bob)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELED"
    deployment.refresh_from_db()
    assert deployment.status == Status.CANCELED
    assert AuditEvent.objects.filter(action="deployment.cancelled", actor=bob).exists()


def test_a_cancel_without_a_body_works(alice: User, deployment: Deployment) -> None:
    response = Client().post(f"{URL}{deployment.pk}/cancel/", headers=auth(alice))
    assert response.status_code == 200


@pytest.mark.parametrize(("persona", "code"), [("carol", 403), ("mallory", 404)])
def test_it_refuses_to_cancel_without_the_cancel_verb(
    personas: dict[str, User], persona: str, code: int, deployment: Deployment
) -> None:
    # carol may view it (a 403 saying why); mallory may not even view it (a 404).
    response = cancel(deployment, personas[persona])
    assert response.status_code == code
    assert response.json()["detail"]
    deployment.refresh_from_db()
    assert deployment.status == Status.PENDING


def test_jenkins_may_not_cancel(jenkins: User, deployment: Deployment) -> None:
    # jenkins may not view deployments: the one it names does not exist for it.
    assert cancel(deployment, jenkins).status_code == 404


@pytest.mark.parametrize("finished", [Status.DONE, Status.FAILED, Status.CANCELED])
def test_a_finished_deployment_cannot_be_cancelled(
    alice: User, deployment: Deployment, finished: Status
) -> None:
    Deployment.objects.filter(pk=deployment.pk).update(status=finished)
    response = cancel(deployment, alice)
    assert response.status_code == 409
    assert response.json()["detail"].startswith("The deployment cannot be cancelled: ")


def test_a_started_first_deployment_has_nothing_to_roll_back_to(
    alice: User, deployment: Deployment
) -> None:
    Deployment.objects.filter(pk=deployment.pk).update(status=Status.STARTED)
    response = cancel(deployment, alice)
    assert response.status_code == 409
    assert "nothing ran before" in response.json()["detail"]


def test_a_started_deployment_is_rolled_back(alice: User, deployment: Deployment) -> None:
    Deployment.objects.filter(pk=deployment.pk).update(
        status=Status.STARTED, source_version=factories.make_version(deployment.service)
    )
    response = cancel(deployment, alice)
    assert response.status_code == 200
    assert response.json()["status"] == "PENDING_CANCELLATION"


def test_cancelling_an_unknown_deployment_answers_404(alice: User) -> None:
    assert post({}, alice, url=f"{URL}999999/cancel/").status_code == 404


def test_cancelling_needs_a_token(deployment: Deployment) -> None:
    assert post({}, url=f"{URL}{deployment.pk}/cancel/").status_code == 401


@pytest.mark.parametrize(("field", "size"), [("message", 5001), ("override_reason", 2001)])
def test_it_refuses_a_message_longer_than_the_deploy_page_allows(
    alice: User, version: DeployableVersion, staging: Environment, field: str, size: int
) -> None:
    response = post(deploy_body(**{field: "x" * size}), alice)
    assert response.status_code == 400
    assert field in response.json()
    assert not Deployment.objects.exists()


def test_it_answers_400_to_a_deeply_nested_body(alice: User) -> None:
    headers = auth(alice)
    response = Client().post(URL, "[" * 5000, content_type="application/json", headers=headers)
    assert response.status_code == 400
