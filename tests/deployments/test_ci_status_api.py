import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import CIStatus, DeployableVersion
from history.models import AuditEvent
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

SHA = "0123456789abcdef0123456789abcdef01234567"
URL = f"/api/v1/deployable-versions/checkout/{SHA}/ci-status/"


@pytest.fixture
def version() -> DeployableVersion:
    return factories.make_version(factories.make_service("checkout"), SHA)


def post(
    body: Any, *, user: User | None = None, url: str = URL, client: Client | None = None
) -> Any:
    headers = {}
    if user is not None:
        headers["Authorization"] = f"Token {factories.token_for(user)}"
    return (client or Client()).post(
        url, json.dumps(body), content_type="application/json", headers=headers
    )


def test_jenkins_reports_a_ci_status_with_201(jenkins: User, version: DeployableVersion) -> None:
    response = post(
        {
            "context": "jenkins/unit",
            "state": "success",
            "url": "https://ci.example.com/job/checkout/42/",
            "description": "312 tests passed",
        },
        user=jenkins,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["service"] == "checkout"
    assert body["git_commit_sha"] == SHA
    assert (body["context"], body["state"]) == ("jenkins/unit", "success")
    status = CIStatus.objects.get()
    assert (status.version, status.description) == (version, "312 tests passed")


def test_a_second_report_of_a_context_replaces_it_with_200(
    jenkins: User, version: DeployableVersion
) -> None:
    assert post({"context": "unit", "state": "pending"}, user=jenkins).status_code == 201
    response = post({"context": "unit", "state": "failure"}, user=jenkins)
    assert response.status_code == 200
    assert CIStatus.objects.get().state == "failure"


def test_contexts_are_kept_apart(jenkins: User, version: DeployableVersion) -> None:
    post({"context": "unit", "state": "success"}, user=jenkins)
    post({"context": "e2e", "state": "failure"}, user=jenkins)
    assert dict(CIStatus.objects.values_list("context", "state")) == {
        "unit": "success",
        "e2e": "failure",
    }


def test_the_context_defaults_to_ci(jenkins: User, version: DeployableVersion) -> None:
    assert post({"state": "success"}, user=jenkins).json()["context"] == "ci"


def test_an_upper_case_sha_in_the_url_finds_the_version(
    jenkins: User, version: DeployableVersion
) -> None:
    url = f"/api/v1/deployable-versions/checkout/{SHA.upper()}/ci-status/"
    assert post({"state": "success"}, user=jenkins, url=url).status_code == 201


def test_it_records_the_report_in_history(jenkins: User, version: DeployableVersion) -> None:
    post({"context": "unit", "state": "error"}, user=jenkins)
    event = AuditEvent.objects.exclude(action__startswith="token.").get()
    assert (event.action, event.actor, event.target_id) == (
        "version.ci_status",
        jenkins,
        str(version.pk),
    )
    assert event.data["state"] == "error"


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        (
            f"/api/v1/deployable-versions/checkout/{'f' * 40}/ci-status/",
            f"No deployable version checkout@{'f' * 40} is registered; register it first.",
        ),
        (
            f"/api/v1/deployable-versions/nope/{SHA}/ci-status/",
            "Unknown service 'nope'.",
        ),
        (
            "/api/v1/deployable-versions/checkout/abc1234/ci-status/",
            "'abc1234' is not a full git commit sha (40 hex digits).",
        ),
    ],
)
def test_an_unknown_version_answers_404_saying_why(
    jenkins: User, version: DeployableVersion, url: str, detail: str
) -> None:
    response = post({"state": "success"}, user=jenkins, url=url)
    assert response.status_code == 404
    assert response.json() == {"detail": detail}
    assert not CIStatus.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "green"}, "state"),
        ({}, "state"),
        ({"state": "success", "url": "javascript:alert(1)"}, "url"),
        ({"state": "success", "context": "c" * 101}, "context"),
        ({"state": "success", "description": "d" * 301}, "description"),
    ],
)
def test_bad_fields_answer_400_naming_them(
    jenkins: User, version: DeployableVersion, body: dict[str, str], field: str
) -> None:
    response = post(body, user=jenkins)
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not CIStatus.objects.exists()
    assert not AuditEvent.objects.exclude(action__startswith="token.").exists()


def test_it_answers_401_without_a_token(version: DeployableVersion) -> None:
    assert post({"state": "success"}).status_code == 401


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
def test_it_rejects_personas_without_the_permission(
    personas: dict[str, User], persona: str, version: DeployableVersion
) -> None:
    assert post({"state": "success"}, user=personas[persona]).status_code == 403
    by_session = post({"state": "success"}, client=login(personas[persona]))
    assert by_session.status_code == 403
    assert not CIStatus.objects.exists()


def test_it_rejects_mallory_even_for_an_unknown_version(mallory: User) -> None:
    # 403, not 404: a refused user learns nothing about which versions exist.
    assert post({"state": "success"}, user=mallory).status_code == 403


def test_a_body_over_64_kib_answers_413(jenkins: User, version: DeployableVersion) -> None:
    response = post({"state": "success", "description": "x" * 70_000}, user=jenkins)
    assert response.status_code == 413


def test_a_form_encoded_body_answers_415(jenkins: User, version: DeployableVersion) -> None:
    token = factories.token_for(jenkins)
    response = Client().post(URL, {"state": "success"}, headers={"Authorization": f"Token {token}"})
    assert response.status_code == 415
