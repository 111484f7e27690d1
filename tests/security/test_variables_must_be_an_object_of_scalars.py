"""Attack: an admin form accepts variables that break every later deploy.

An environment's variables saved as a JSON list (or an object of objects) were stored, and
from then on every deploy into that environment answered 500. Variables of environments and
services must be a JSON object of scalars, refused with a clear message otherwise, and a
JSON nested deeper than the parser recurses must be a form error, not a 500.
"""

from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.models import Service
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

BAD_VARIABLES = [
    ("[1, 2]", "must be a JSON object"),
    ('"text"', "must be a JSON object"),
    ('{"nested": {"a": 1}}', "not a string, number or true/false: nested"),
    ('{"list": [1]}', "not a string, number or true/false: list"),
    ('{"empty": null}', "not a string, number or true/false: empty"),
    ('{"bad name": "x"}', "Variable names are letters, digits and _"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
]


def _environment_form(environment: Environment, variables: str) -> dict[str, Any]:
    return {
        "name": environment.name,
        "cluster": environment.cluster_id,
        "namespace": environment.namespace,
        "availability": environment.availability,
        "region": environment.region,
        "node_port_coefficient": environment.node_port_coefficient,
        "variables": variables,
        "concurrency_limit": environment.concurrency_limit,
        "rollout_timeout_seconds": environment.rollout_timeout_seconds,
    }


def _errors(response: Any) -> str:
    assert response.status_code == 200, "expected the form again, with errors"
    return str(response.context["adminform"].form.errors)


@pytest.mark.parametrize(("variables", "message"), BAD_VARIABLES)
def test_an_environment_cannot_be_saved_with_variables_that_are_not_an_object_of_scalars(
    alice: User, variables: str, message: str
) -> None:
    environment = factories.make_environment("staging", variables={"host": "a.example"})
    url = f"/admin/environments/environment/{environment.pk}/change/"
    response = login(alice).post(url, _environment_form(environment, variables))
    assert message in _errors(response)
    environment.refresh_from_db()
    assert environment.variables == {"host": "a.example"}


def test_an_environment_with_scalar_variables_is_saved(alice: User) -> None:
    environment = factories.make_environment("staging")
    url = f"/admin/environments/environment/{environment.pk}/change/"
    form = _environment_form(environment, '{"host": "a.example", "replicas": 2, "debug": true}')
    assert login(alice).post(url, form).status_code == 302
    environment.refresh_from_db()
    assert environment.variables == {"host": "a.example", "replicas": 2, "debug": True}


@pytest.mark.parametrize(("variables", "message"), BAD_VARIABLES)
def test_a_service_cannot_be_saved_with_default_variables_that_are_not_an_object_of_scalars(
    alice: User, variables: str, message: str
) -> None:
    service = factories.make_service("checkout", default_variables={"replicas": 1})
    response = login(alice).post(
        f"/admin/deployments/service/{service.pk}/change/",
        {
            "name": "checkout",
            "image_repository": service.image_repository,
            "git_repository_url": "",
            "deployment_template": service.deployment_template,
            "service_template": "",
            "ingress_template": "",
            "extra_templates": "",
            "default_variables": variables,
        },
    )
    assert message in _errors(response)
    service.refresh_from_db()
    assert service.default_variables == {"replicas": 1}
    assert Service.objects.count() == 1


def test_a_group_cannot_be_saved_in_the_admin_with_variables_nested_too_deeply(
    alice: User,
) -> None:
    environment = factories.make_environment("staging")
    service = factories.make_service("checkout")
    response = login(alice).post(
        "/admin/deployments/group/add/",
        {
            "service": service.pk,
            "environment": environment.pk,
            "name": "eu",
            "scaling_factor": "1",
            "variables": "[" * 100_000 + "]" * 100_000,
        },
    )
    assert "nested too deeply" in _errors(response)
    assert not service.groups.exists()
