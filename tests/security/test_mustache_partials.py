"""Attack (issue #10, High): mustache partials (`{{> path}}`) read files of the Apollo host by
their path, and sections reached Python attributes (`{{#image.__class__}}`). Templates with a
partial are refused when saved and cannot render; names resolve only through plain data."""

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.manifests import render_for
from deployments.models import Deployment, Service
from deployments.rendering import RenderError
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

SHA = "0123456789abcdef0123456789abcdef01234567"
ADD = "/admin/deployments/service/add/"


def _template(value: str) -> str:
    return factories.DEPLOYMENT_TEMPLATE + (
        f'          env:\n            - {{name: LEAK, value: "{value}"}}\n'
    )


def _form(template: str) -> dict[str, Any]:
    return {
        "name": "checkout",
        "image_repository": "registry.example.com/checkout",
        "git_repository_url": "",
        "deployment_template": template,
        "service_template": "",
        "ingress_template": "",
        "extra_templates": "",
        "default_variables": "{}",
    }


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "credentials.mustache"
    path.write_text("the-host-secret")
    return path


def test_alice_cannot_save_a_template_with_a_partial(alice: User, secret_file: Path) -> None:
    partial = str(secret_file.with_suffix(""))
    response = login(alice).post(ADD, _form(_template(f"{{{{> {partial}}}}}")))
    assert response.status_code == 200, "expected the form again, with an error"
    errors = " ".join(response.context["adminform"].form.errors["deployment_template"])
    assert "partials" in errors
    assert "the-host-secret" not in response.content.decode()
    assert not Service.objects.exists()


def test_a_partial_stored_before_never_reads_the_file(bob: User, secret_file: Path) -> None:
    factories.make_environment("staging", availability="staging")
    partial = str(secret_file.with_suffix(""))
    service = factories.make_service(
        "checkout", deployment_template=_template(f"{{{{> {partial}}}}}")
    )
    version = factories.make_version(service, SHA)
    with pytest.raises(RenderError, match="partials"):
        render_for(
            service=service,
            environment=factories.make_environment(),
            version=version,
            group=None,
        )
    response = Client().post(
        "/api/v1/deployments/",
        json.dumps({"service": "checkout", "environment": "staging", "git_commit_sha": SHA}),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(bob)}"},
    )
    assert response.status_code == 400
    assert "partials" in response.json()["detail"]
    assert "the-host-secret" not in response.content.decode()
    assert not Deployment.objects.exists()


@pytest.mark.parametrize(
    "section",
    [
        "{{#image.__class__}}{{__name__}}{{/image.__class__}}",
        "{{#image}}{{__class__.__name__}}{{/image}}",
        "{{#image.upper}}{{.}}{{/image.upper}}",
        "{{#replicas.real}}{{.}}{{/replicas.real}}",
        "{{#service}}{{__doc__}}{{/service}}",
    ],
)
def test_sections_cannot_reach_python_attributes(section: str) -> None:
    service = factories.make_service("checkout", deployment_template=_template(section))
    version = factories.make_version(service, SHA)
    [doc] = render_for(
        service=service, environment=factories.make_environment(), version=version, group=None
    )
    [container] = doc["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "LEAK", "value": ""}]


def test_an_attribute_path_outside_a_section_is_an_undefined_variable() -> None:
    service = factories.make_service(
        "checkout", deployment_template=_template("{{image.__class__.__name__}}")
    )
    version = factories.make_version(service, SHA)
    with pytest.raises(RenderError, match=r"undefined variables: image\.__class__\.__name__"):
        render_for(
            service=service,
            environment=factories.make_environment(),
            version=version,
            group=None,
        )
