"""Attack: crafted query strings, path segments and bodies that used to answer 500.

Ids out of range, huge numbers, garbage and NUL bytes in query parameters and keyset
cursors, deeply nested JSON bodies and YAML: each is a 4xx with a clear message, never a
500, and changes nothing.
"""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import DeployableVersion, Deployment, Group
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

NASTY = [
    "",
    "0",
    "-1",
    "9" * 30,
    str(2**63),
    str(-(2**63) - 1),
    "1e309",
    "NaN",
    "abc",
    "\x00",
    "a\x00b",
    "%00",
    "'; DROP TABLE x; --",
    "../../etc/passwd",
    "\u202e\ufeff",
    "[[[[",
    "{}",
]


@pytest.fixture
def world(alice: User, bob: User) -> dict[str, Any]:
    staging = factories.make_environment("staging")
    service = factories.make_service("checkout")
    version = factories.make_version(service, "a" * 40)
    deployment = factories.make_deployment(
        service=service, environment=staging, version=version, deployed_by=bob
    )
    return {"service": service, "environment": staging, "deployment": deployment}


def _get_pages(client: Client) -> list[tuple[str, dict[str, str]]]:
    pages: list[tuple[str, dict[str, str]]] = []
    for value in NASTY:
        pages += [
            ("/history/", {"after": value}),
            ("/history/", {"service": value, "environment": value, "user": value}),
            ("/history/", {"q": value, "action": value, "since": value, "until": value}),
            ("/deployments/diff/", {"a": value, "b": value}),
            ("/deployments/diff/", {"d": value}),
            ("/deploy/", {"services": value, "environments": value, "groups": value}),
            ("/deploy/", {"sha": value, "branch": value, "message": value}),
            ("/deploy/versions/", {"services": value, "q": value, "branch": value}),
            ("/environments/staging/logs/", {"tail": value, "pod": "", "service": value}),
            ("/services/checkout/", {"environment": value}),
            ("/api/v1/deployments/", {"cursor": value}),
            ("/api/v1/deployments/", {"page_size": value}),
            ("/api/v1/deployments/", {"service": value, "environment": value, "status": value}),
            ("/api/v1/groups/", {"service": value, "environment": value}),
            ("/admin/permissions/grant/matrix/", {"verb": value, "service": value}),
            ("/admin/deployments/deployment/", {"q": value, "o": value, "p": value}),
            ("/admin/history/event/", {"q": value}),
        ]
    return pages


@pytest.mark.parametrize("persona", ["alice", "bob", "carol", "mallory"])
def test_crafted_query_parameters_never_answer_500(
    world: dict[str, Any], personas: dict[str, User], persona: str
) -> None:
    client = login(personas[persona])
    broken = []
    for url, params in _get_pages(client):
        status = client.get(url, params).status_code
        if status >= 500:
            broken.append((url, params, status))
    assert broken == []


@pytest.mark.parametrize(
    "path",
    [
        "/deployments/99999999999999999999/",
        f"/deployments/{2**63}/",
        f"/deployments/{2**63}/cancel/",
        f"/api/v1/deployments/{2**63}/",
        f"/api/v1/deployments/{2**63}/cancel/",
        f"/services/checkout/groups/{2**63}/",
        f"/environments/staging/groups/{2**63}/scale/",
        "/services/%00/",
        "/environments/%00/",
        "/deploy/results/%00/",
        "/api/v1/deployable-versions/%00/abc/ci-status/",
    ],
)
def test_ids_out_of_range_and_nul_bytes_in_paths_are_4xx(
    world: dict[str, Any], alice: User, path: str
) -> None:
    client = login(alice)
    assert client.get(path).status_code < 500
    assert client.post(path, {}).status_code < 500


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/deployments/", _nested(50_000)),
        ("/api/v1/deployments/", '{"service": ' + _nested(50_000) + "}"),
        ("/api/v1/deployable-versions/", _nested(50_000)),
        ("/api/v1/deployable-versions/", '{"service": "checkout", "git_commit_sha": 1e999}'),
        ("/api/v1/deployable-versions/", '{"service": "\\u0000", "git_commit_sha": "a"}'),
        ("/api/v1/deployments/", '{"service": "checkout\\u0000", "environment": "staging"}'),
        ("/api/v1/deployments/", '{"service": ["x"], "environment": {"a": 1}}'),
        ("/api/v1/deployments/", "NaN"),
        ("/api/v1/deployable-versions/checkout/" + "a" * 40 + "/ci-status/", _nested(50_000)),
    ],
)
def test_crafted_api_bodies_are_400_and_change_nothing(
    world: dict[str, Any], alice: User, url: str, body: str
) -> None:
    before = (Deployment.objects.count(), DeployableVersion.objects.count())
    response = login(alice).post(url, body, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert response.json()
    assert (Deployment.objects.count(), DeployableVersion.objects.count()) == before


@pytest.mark.parametrize(
    "variables", [_nested(50_000), '{"a": ' + _nested(50_000) + "}", '{"a": "\\u0000"}']
)
def test_crafted_group_variables_are_a_form_error(
    world: dict[str, Any], alice: User, variables: str
) -> None:
    response = login(alice).post(
        "/services/checkout/groups/",
        {"environment": world["environment"].pk, "name": "eu", "variables": variables},
    )
    assert response.status_code < 500
    assert not Group.objects.exists()


@pytest.mark.parametrize("persona", ["alice", "bob", "carol", "mallory"])
def test_crafted_form_posts_never_answer_500(
    world: dict[str, Any], personas: dict[str, User], persona: str
) -> None:
    client = login(personas[persona])
    deployments_before = Deployment.objects.count()
    broken = []
    for value in NASTY:
        posts = [
            ("/deploy/", {"services": value, "environments": value, "sha": value}),
            (
                "/deploy/",
                {
                    "services": world["service"].pk,
                    "environments": value,
                    "sha": value,
                    "message": value,
                    "groups": value,
                    "override_reason": value,
                },
            ),
            (
                "/services/checkout/groups/",
                {"environment": value, "name": value, "scaling_factor": value, "variables": value},
            ),
            (f"/deployments/{world['deployment'].pk}/redeploy/", {"message": value}),
            (f"/deployments/{world['deployment'].pk}/cancel/", {"reason": value}),
        ]
        for url, data in posts:
            status = client.post(url, data).status_code
            if status >= 500:
                broken.append((url, data, status))
    assert broken == []
    assert Deployment.objects.count() == deployments_before


@pytest.mark.parametrize(
    "template",
    [
        "kind: Deployment\nmetadata: " + _nested(50_000) + "\n",
        "kind: Deployment\nmetadata:\n" + "".join("  " * i + f"k{i}:\n" for i in range(300)),
        'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
            f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
            f"*{chr(97 + i)}]\n"
            for i in range(8)
        )
        + "kind: Deployment\n",
        "kind: Deployment\nmetadata: {name: \x00}\n",
    ],
)
def test_crafted_yaml_templates_are_a_form_error_in_the_service_admin(
    alice: User, template: str
) -> None:
    response = login(alice).post(
        "/admin/deployments/service/add/",
        {
            "name": "bomb",
            "image_repository": "registry.example.com/bomb",
            "git_repository_url": "",
            "deployment_template": template,
            "service_template": "",
            "ingress_template": "",
            "extra_templates": "",
            "default_variables": "{}",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/services/a%00b/", {}),
        ("/environments/%00/", {}),
        ("/history/", {"q": "a\x00b"}),
        ("/api/v1/deployments/", {"service": "\x00"}),
    ],
)
def test_a_nul_byte_in_a_path_or_query_is_a_400_with_a_clear_message(
    world: dict[str, Any], alice: User, url: str, params: dict[str, str]
) -> None:
    # PostgreSQL cannot hold NUL in text: these answered 500 there (SQLite let them through).
    response = login(alice).get(url, params)
    assert response.status_code == 400
    assert "NUL byte" in response.content.decode()
