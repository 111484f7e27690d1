"""The service admin: templates are validated on save, and their manifests can be previewed."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.models import Service
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

ADD = "/admin/deployments/service/add/"


def _data(**changes: str) -> dict[str, Any]:
    data = {
        "name": "checkout",
        "image_repository": "registry.example.com/checkout",
        "git_repository_url": "",
        "deployment_template": factories.DEPLOYMENT_TEMPLATE,
        "service_template": "",
        "ingress_template": "",
        "extra_templates": "",
        "default_variables": "{}",
    }
    data.update(changes)
    return data


def _errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "expected the form again, with errors"
    errors: dict[str, list[str]] = response.context["adminform"].form.errors
    return errors


def test_alice_saves_a_service_whose_templates_render(alice: User) -> None:
    response = login(alice).post(ADD, _data())
    assert response.status_code == 302
    assert Service.objects.filter(name="checkout").exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"deployment_template": "kind: Deployment\nmetadata:\n  name: {{nope}}\n"},
            "deployment_template",
            "deployment template: undefined variables: nope",
        ),
        (
            {"service_template": "kind: Service\nmetadata: [unclosed\n"},
            "service_template",
            "service template is not valid YAML",
        ),
        (
            {"ingress_template": "kind: Gateway\nmetadata:\n  name: x\n"},
            "ingress_template",
            "kind 'Gateway' is not one Apollo applies",
        ),
        (
            {"extra_templates": "kind: ConfigMap\nmetadata:\n  name: {{#open}}\n"},
            "extra_templates",
            "extra template",
        ),
        (
            {"deployment_template": "kind: ConfigMap\nmetadata:\n  name: cm\n"},
            "deployment_template",
            "the templates must produce a Deployment",
        ),
        ({"default_variables": "[1, 2]"}, "default_variables", "must be a JSON object"),
    ],
)
def test_a_broken_template_is_refused_on_its_field(
    alice: User, changes: dict[str, str], field: str, message: str
) -> None:
    errors = _errors(login(alice).post(ADD, _data(**changes)))
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert not Service.objects.filter(name="checkout").exists()


def test_a_variable_that_every_environment_defines_is_accepted(alice: User) -> None:
    factories.make_environment("staging", variables={"host": "staging.example.com"})
    factories.make_environment("prod", variables={"host": "example.com"})
    template = factories.DEPLOYMENT_TEMPLATE.replace(
        "  name: {{service}}\n", "  name: {{service}}\n  annotations: {host: {{host}}}\n", 1
    )
    assert login(alice).post(ADD, _data(deployment_template=template)).status_code == 302


def test_a_variable_missing_in_one_environment_is_reported_with_that_environment(
    alice: User,
) -> None:
    factories.make_environment("staging", variables={"host": "staging.example.com"})
    factories.make_environment("prod")
    template = factories.DEPLOYMENT_TEMPLATE.replace(
        "  name: {{service}}\n", "  name: {{service}}\n  annotations: {host: {{host}}}\n", 1
    )
    errors = _errors(login(alice).post(ADD, _data(deployment_template=template)))
    assert "undefined variables: host (in environment prod" in " ".join(
        errors["deployment_template"]
    )


def test_the_change_page_previews_the_rendered_manifests(alice: User) -> None:
    service = factories.make_service("checkout")
    staging = factories.make_environment("staging")
    page = login(alice).get(f"/admin/deployments/service/{service.pk}/change/").content.decode()
    assert "kind: Deployment" in page
    assert f"/admin/deployments/service/{service.pk}/preview/?environment={staging.pk}" in page


def test_the_preview_renders_for_a_chosen_environment(alice: User) -> None:
    service = factories.make_service("checkout", default_variables={"replicas": 3})
    staging = factories.make_environment("staging", namespace="team-a")
    response = login(alice).get(
        f"/admin/deployments/service/{service.pk}/preview/", {"environment": staging.pk}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "namespace: team-a" in page
    assert "replicas: 3" in page


def test_the_preview_redacts_secrets(alice: User) -> None:
    service = factories.make_service(
        "checkout",
        extra_templates="kind: Secret\nmetadata: {name: creds}\nstringData: {password: hunter2}\n",
    )
    page = login(alice).get(f"/admin/deployments/service/{service.pk}/preview/").content.decode()
    assert "hunter2" not in page
    assert "&lt;redacted&gt;" in page


@pytest.mark.parametrize("persona", ["bob", "carol", "mallory"])
def test_non_staff_cannot_open_the_preview(personas: dict[str, User], persona: str) -> None:
    service = factories.make_service("checkout")
    response = login(personas[persona]).get(f"/admin/deployments/service/{service.pk}/preview/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
