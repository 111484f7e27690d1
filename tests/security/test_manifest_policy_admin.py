"""The manifest policy's settings in the admin: the service's allow-lists (validated JSON
lists) and the environment's "allow privileged workloads" (off by default)."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.models import Service
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

ADD = "/admin/deployments/service/add/"


def _data(**changes: str) -> dict[str, Any]:
    return {
        "name": "checkout",
        "image_repository": "registry.example.com/checkout",
        "git_repository_url": "",
        "deployment_template": factories.DEPLOYMENT_TEMPLATE,
        "service_template": "",
        "ingress_template": "",
        "extra_templates": "",
        "default_variables": "{}",
        **changes,
    }


def test_alice_sets_the_allow_lists_of_a_service(alice: User) -> None:
    response = login(alice).post(
        ADD,
        _data(
            allowed_sidecar_images='["registry.example.com/tools/proxy:1.4", '
            '"registry.example.com:5000/agent@sha256:' + "a" * 64 + '"]',
            allowed_service_accounts='["checkout"]',
            allowed_secrets='["checkout-db"]',
        ),
    )
    assert response.status_code == 302
    service = Service.objects.get()
    assert service.allowed_sidecar_images[0] == "registry.example.com/tools/proxy:1.4"
    assert service.allowed_service_accounts == ["checkout"]
    assert service.allowed_secrets == ["checkout-db"]


def test_empty_allow_lists_are_saved_as_empty_lists(alice: User) -> None:
    response = login(alice).post(
        ADD, _data(allowed_sidecar_images="", allowed_service_accounts="", allowed_secrets="")
    )
    assert response.status_code == 302
    assert Service.objects.get().allowed_secrets == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("allowed_sidecar_images", '["registry.example.com/proxy"]', "need a tag or digest"),
        ("allowed_sidecar_images", '"proxy:1"', "JSON list of non-empty strings"),
        ("allowed_service_accounts", '["Cluster Admin"]', "Not Kubernetes object names"),
        ("allowed_secrets", '[{"name": "x"}]', "JSON list of non-empty strings"),
    ],
)
def test_bad_allow_lists_are_explained_and_nothing_is_saved(
    alice: User, field: str, value: str, message: str
) -> None:
    response = login(alice).post(ADD, _data(**{field: value}))
    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors[field])
    assert not Service.objects.exists()


def test_privileged_workloads_are_off_by_default_and_an_admin_setting(alice: User) -> None:
    environment = factories.make_environment("staging")
    assert environment.allow_privileged_workloads is False
    page = login(alice).get(f"/admin/environments/environment/{environment.pk}/change/")
    assert 'name="allow_privileged_workloads"' in page.content.decode()
    assert Environment._meta.get_field("allow_privileged_workloads").default is False
