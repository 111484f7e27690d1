import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import DeployableVersion, Service
from history.models import AuditEvent
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

URL = "/api/v1/deployable-versions/"
SHA = "0123456789abcdef0123456789abcdef01234567"


def token_of(user: User) -> str:
    key: str = factories.token_for(user)
    return key


def post(body: Any, *, token: str | None = None, client: Client | None = None) -> Any:
    headers = {"Authorization": f"Token {token}"} if token else {}
    return (client or Client()).post(
        URL, json.dumps(body), content_type="application/json", headers=headers
    )


def test_jenkins_registers_a_version_with_201(jenkins: User, checkout: Service) -> None:
    response = post(
        {
            "service": "checkout",
            "git_commit_sha": SHA,
            "branch": "main",
            "commit_message": "Fix the basket",
            "commit_author": "Dev <dev@example.com>",
            "commit_url": f"https://git.example.com/checkout/commit/{SHA}",
            "repository_url": "https://git.example.com/checkout",
            "committed_at": "2025-01-02T03:04:05+01:00",
        },
        token=token_of(jenkins),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    version = DeployableVersion.objects.get()
    assert body["id"] == version.pk
    assert body["service"] == "checkout"
    assert body["git_commit_sha"] == SHA
    assert body["branch"] == "main"
    assert body["image"] == f"registry.example.com/checkout:{SHA}"
    assert body["committed_at"] == "2025-01-02T02:04:05Z"


def test_only_service_and_sha_are_required(jenkins: User, checkout: Service) -> None:
    response = post({"service": "checkout", "git_commit_sha": SHA}, token=token_of(jenkins))
    assert response.status_code == 201
    assert response.json()["branch"] == ""


def test_a_second_registration_answers_200_with_the_same_row(
    jenkins: User, checkout: Service
) -> None:
    token = token_of(jenkins)
    first = post({"service": "checkout", "git_commit_sha": SHA}, token=token)
    second = post({"service": "checkout", "git_commit_sha": SHA}, token=token)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert DeployableVersion.objects.count() == 1


def test_it_normalises_an_upper_case_sha(jenkins: User, checkout: Service) -> None:
    response = post({"service": "checkout", "git_commit_sha": SHA.upper()}, token=token_of(jenkins))
    assert response.json()["git_commit_sha"] == SHA
    again = post({"service": "checkout", "git_commit_sha": SHA}, token=token_of(jenkins))
    assert again.status_code == 200


def test_it_records_the_registration_in_history(jenkins: User, checkout: Service) -> None:
    post({"service": "checkout", "git_commit_sha": SHA}, token=token_of(jenkins))
    event = AuditEvent.objects.exclude(action__startswith="token.").get()
    assert (event.action, event.actor) == ("version.registered", jenkins)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"service": "nope", "git_commit_sha": SHA}, {"service": ["Unknown service 'nope'."]}),
        ({"git_commit_sha": SHA}, {"service": ["This field is required."]}),
        ({"service": "checkout"}, {"git_commit_sha": ["This field is required."]}),
        (
            {"service": "checkout", "git_commit_sha": "abc1234"},
            {"git_commit_sha": ["'abc1234' is not a full git commit sha (40 hex digits)."]},
        ),
        (
            {"service": "checkout", "git_commit_sha": "z" * 40},
            {"git_commit_sha": [f"'{'z' * 40}' is not a full git commit sha (40 hex digits)."]},
        ),
    ],
)
def test_it_answers_400_naming_the_field(
    jenkins: User, checkout: Service, body: dict[str, str], errors: dict[str, list[str]]
) -> None:
    response = post(body, token=token_of(jenkins))
    assert response.status_code == 400
    assert response.json() == errors
    assert not DeployableVersion.objects.exists()
    assert not AuditEvent.objects.exclude(action__startswith="token.").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("committed_at", "yesterday"),
        ("committed_at", "2025-13-01T00:00:00Z"),
        ("commit_url", "javascript:alert(1)"),
        ("repository_url", "ftp//nope"),
        ("branch", "b" * 256),
        ("git_commit_sha", 42),
        ("branch", ["main"]),
    ],
)
def test_it_refuses_bad_fields_with_400_and_writes_nothing(
    jenkins: User, checkout: Service, field: str, value: Any
) -> None:
    body = {"service": "checkout", "git_commit_sha": SHA, field: value}
    response = post(body, token=token_of(jenkins))
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert not DeployableVersion.objects.exists()
    assert not AuditEvent.objects.exclude(action__startswith="token.").exists()


def test_a_naive_commit_time_is_read_as_utc(jenkins: User, checkout: Service) -> None:
    body = {"service": "checkout", "git_commit_sha": SHA, "committed_at": "2025-01-02T03:04:05"}
    response = post(body, token=token_of(jenkins))
    assert response.json()["committed_at"] == "2025-01-02T03:04:05Z"


def test_it_answers_401_without_a_token(checkout: Service) -> None:
    response = post({"service": "checkout", "git_commit_sha": SHA})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert not DeployableVersion.objects.exists()


@pytest.mark.parametrize(
    "header", ["Token 0000000000000000000000000000000000000000", "Token", "Bearer x"]
)
def test_it_answers_401_with_a_wrong_token(jenkins: User, checkout: Service, header: str) -> None:
    response = Client().post(
        URL,
        json.dumps({"service": "checkout", "git_commit_sha": SHA}),
        content_type="application/json",
        headers={"Authorization": header},
    )
    assert response.status_code == 401
    assert not DeployableVersion.objects.exists()


def test_a_deactivated_jenkins_token_answers_401(jenkins: User, checkout: Service) -> None:
    token = token_of(jenkins)
    jenkins.is_active = False
    jenkins.save()
    assert post({"service": "checkout", "git_commit_sha": SHA}, token=token).status_code == 401


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
def test_it_rejects_personas_without_the_permission_by_token(
    personas: dict[str, User], persona: str, checkout: Service
) -> None:
    response = post(
        {"service": "checkout", "git_commit_sha": SHA}, token=token_of(personas[persona])
    )
    assert response.status_code == 403
    assert "Can add deployable version" in response.json()["detail"]
    assert not DeployableVersion.objects.exists()


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
def test_it_rejects_personas_without_the_permission_by_session(
    personas: dict[str, User], persona: str, checkout: Service
) -> None:
    response = post({"service": "checkout", "git_commit_sha": SHA}, client=login(personas[persona]))
    assert response.status_code == 403
    assert not DeployableVersion.objects.exists()


def test_it_rejects_mallory_before_looking_at_the_body(mallory: User) -> None:
    # No field errors (which would tell her which services exist), just 403.
    response = post({"service": "secret-service", "git_commit_sha": "x"}, token=token_of(mallory))
    assert response.status_code == 403


def test_alice_may_register_from_her_session(alice: User, checkout: Service) -> None:
    response = post({"service": "checkout", "git_commit_sha": SHA}, client=login(alice))
    assert response.status_code == 201


def test_a_session_post_needs_the_csrf_token(alice: User, checkout: Service) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = post({"service": "checkout", "git_commit_sha": SHA}, client=client)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_a_body_over_64_kib_answers_413(jenkins: User, checkout: Service) -> None:
    body = {"service": "checkout", "git_commit_sha": SHA, "commit_message": "x" * 70_000}
    response = post(body, token=token_of(jenkins))
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 64 KiB."}
    assert not DeployableVersion.objects.exists()


def test_a_body_over_djangos_own_limit_answers_413_in_json(
    jenkins: User, checkout: Service, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = {"service": "checkout", "git_commit_sha": SHA, "commit_message": "x" * 5_000}
    response = post(body, token=token_of(jenkins))
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"


def test_a_commit_message_just_under_the_limit_is_kept_whole(
    jenkins: User, checkout: Service
) -> None:
    message = "word " * 12_000 + "end"  # 60 003 bytes
    body = {"service": "checkout", "git_commit_sha": SHA, "commit_message": message}
    response = post(body, token=token_of(jenkins))
    assert response.status_code == 201
    assert DeployableVersion.objects.get().commit_message == message


def test_a_form_encoded_body_answers_415(jenkins: User, checkout: Service) -> None:
    response = Client().post(
        URL,
        {"service": "checkout", "git_commit_sha": SHA},
        headers={"Authorization": f"Token {token_of(jenkins)}"},
    )
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]
    assert not DeployableVersion.objects.exists()


def test_broken_json_answers_400(jenkins: User, checkout: Service) -> None:
    response = Client().post(
        URL,
        '{"service": "checkout", ',
        content_type="application/json",
        headers={"Authorization": f"Token {token_of(jenkins)}"},
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_a_json_list_answers_400(jenkins: User, checkout: Service) -> None:
    response = post([{"service": "checkout", "git_commit_sha": SHA}], token=token_of(jenkins))
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_get_is_not_allowed(jenkins: User) -> None:
    response = Client().get(URL, headers={"Authorization": f"Token {token_of(jenkins)}"})
    assert response.status_code == 405
