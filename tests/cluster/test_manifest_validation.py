"""A manifest with a misspelt field is refused with the server's own message, on both clusters.

kubesim judges fields by the real server's published OpenAPI (kubesim/openapi.json, fetched by
cluster/fetch_openapi.py), so the refusal Apollo shows is the one a real cluster gives."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.conftest import login
from tests.kubeenv import deploy, wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def test_a_manifest_with_a_misspelt_field_is_refused_with_the_servers_message_on_its_page(
    alice: User, staging: Environment
) -> None:
    service = factories.make_service("typo")
    service.deployment_template = service.deployment_template.replace("replicas:", "replcas:")
    service.save()
    version = factories.make_version(service)
    deployment = wait_until_terminal(deploy(alice, service, staging, version).deployment)  # type: ignore[arg-type]
    assert deployment.status == Status.FAILED
    assert "refused the manifests" in deployment.status_reason
    assert ".spec.replcas: field not declared in schema" in deployment.status_reason
    assert "unreachable" not in deployment.status_reason
    page = login(alice).get(reverse("deployment-detail", args=[deployment.pk]))
    assert ".spec.replcas: field not declared in schema" in page.content.decode()
