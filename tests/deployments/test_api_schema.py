import pytest
import yaml
from django.contrib.auth.models import User
from django.test import Client

from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

URL = "/api/v1/schema/"


def test_it_answers_401_to_anonymous_visitors() -> None:
    assert Client().get(URL).status_code == 401


def test_it_documents_the_version_operations(jenkins: User) -> None:
    token = factories.token_for(jenkins)
    response = Client().get(f"{URL}?format=json", headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200
    schema = response.json()
    register = schema["paths"]["/api/v1/deployable-versions/"]["post"]
    assert set(register["responses"]) >= {"200", "201", "400", "401", "403", "413", "415"}
    ci_status = schema["paths"]["/api/v1/deployable-versions/{service}/{sha}/ci-status/"]["post"]
    assert set(ci_status["responses"]) >= {"200", "201", "400", "404"}
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_it_documents_the_deployment_operations(alice: User) -> None:
    paths = login(alice).get(f"{URL}?format=json").json()["paths"]
    assert set(paths["/api/v1/deployments/"]) == {"get", "post"}
    assert set(paths["/api/v1/deployments/"]["post"]["responses"]) >= {"201", "403", "409"}
    assert set(paths["/api/v1/deployments/{deployment_id}/"]) == {"get"}
    cancel = paths["/api/v1/deployments/{deployment_id}/cancel/"]["post"]
    assert set(cancel["responses"]) >= {"200", "403", "409"}
    filters = {p["name"] for p in paths["/api/v1/deployments/"]["get"]["parameters"]}
    assert filters >= {"service", "environment", "status", "cursor", "page_size"}


def test_the_request_body_lists_the_contract_fields(mallory: User) -> None:
    schema = yaml.safe_load(login(mallory).get(URL).content)
    operation = schema["paths"]["/api/v1/deployable-versions/"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(request["properties"]) == {
        "service",
        "git_commit_sha",
        "branch",
        "commit_message",
        "commit_author",
        "commit_url",
        "repository_url",
        "committed_at",
    }
    assert set(request["required"]) == {"service", "git_commit_sha"}


def test_the_schema_generates_without_warnings(
    alice: User, capsys: pytest.CaptureFixture[str]
) -> None:
    assert login(alice).get(URL).status_code == 200
    assert "Warning" not in capsys.readouterr().err
