"""Attack (issue #10, High): a 551-byte YAML alias bomb was accepted in a template. YAML with
anchors or aliases, or nested or sized beyond the limits, is refused with a clear error, when
an admin saves the templates and when a deployment renders them (templates stored before)."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import Deployment, Service
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

SHA = "0123456789abcdef0123456789abcdef01234567"
ADD = "/admin/deployments/service/add/"
LAUGHS = "\n".join(
    f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)
)
BOMB = f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: bomb}}
data:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
{LAUGHS}
"""
ANCHORED = """\
apiVersion: v1
kind: ConfigMap
metadata: &meta {name: copy}
---
apiVersion: v1
kind: Secret
metadata: *meta
"""
DEEP = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata:\n  x: "
    + "[" * 200
    + "]" * 200
    + "\n"
)
HUGE = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: huge}\ndata:\n" + "".join(
    f"  k{i}: {'v' * 100}\n" for i in range(1400)
)
CASES = [
    pytest.param(BOMB, "anchors and aliases are not allowed", id="alias-bomb"),
    pytest.param(ANCHORED, "anchors and aliases are not allowed", id="anchor"),
    pytest.param(DEEP, "nested deeper than", id="deep"),
    pytest.param(HUGE, "larger than", id="huge"),
]


def _form(extra: str) -> dict[str, Any]:
    return {
        "name": "checkout",
        "image_repository": "registry.example.com/checkout",
        "git_repository_url": "",
        "deployment_template": factories.DEPLOYMENT_TEMPLATE,
        "service_template": "",
        "ingress_template": "",
        "extra_templates": extra,
        "default_variables": "{}",
    }


def test_the_bomb_is_the_551_bytes_of_the_report() -> None:
    assert len(BOMB.encode()) < 700
    assert BOMB.count("*") == 72


@pytest.mark.parametrize(("extra", "message"), CASES)
def test_alice_cannot_save_a_bomb_in_the_templates(alice: User, extra: str, message: str) -> None:
    response = login(alice).post(ADD, _form(extra))
    assert response.status_code == 200, "expected the form again, with an error"
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors["extra_templates"])
    assert not Service.objects.exists()


@pytest.mark.parametrize(("extra", "message"), CASES)
def test_a_bomb_stored_before_is_refused_when_deploying_and_nothing_is_created(
    bob: User, extra: str, message: str
) -> None:
    factories.make_environment("staging", availability="staging")
    service = factories.make_service("checkout", extra_templates=extra)
    factories.make_version(service, SHA)
    response = Client().post(
        "/api/v1/deployments/",
        json.dumps({"service": "checkout", "environment": "staging", "git_commit_sha": SHA}),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(bob)}"},
    )
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert not Deployment.objects.exists()


def test_a_bomb_in_a_variable_value_is_only_text(bob: User) -> None:
    """Values never become YAML: an alias bomb in a variable is one harmless string."""
    factories.make_environment("staging", availability="staging", variables={"x": BOMB})
    template = factories.DEPLOYMENT_TEMPLATE.replace(
        "  name: {{service}}\n", "  name: {{service}}\n  annotations: {x: {{x}}}\n", 1
    )
    service = factories.make_service("checkout", deployment_template=template)
    factories.make_version(service, SHA)
    response = Client().post(
        "/api/v1/deployments/",
        json.dumps({"service": "checkout", "environment": "staging", "git_commit_sha": SHA}),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(bob)}"},
    )
    assert response.status_code == 201, response.content
