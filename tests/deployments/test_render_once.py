"""Render once: the manifests rendered at the request are stored on the deployment (Secret values
encrypted) and the worker applies exactly those; a rollback re-applies the earlier deployment's."""

import base64
import json
import threading
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.test import Client
from kubernetes import client

from deployments.models import Deployment, Service
from deployments.services.deploy import cancel_deployment
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.conftest import login
from tests.kubeenv import deploy, wait_for, wait_until_terminal

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = (
    "apiVersion: v1\nkind: Secret\nmetadata: {name: {{service}}-db}\n"
    "stringData: {password: s3cr3t-Pa55}\n"
)
TIER = "      labels: {app: {{service}}, tier: web}\n"


def _post(user: User, service: Service, environment: Environment) -> Deployment:
    version = factories.make_version(service)
    body = {
        "service": service.name,
        "environment": environment.name,
        "git_commit_sha": version.git_commit_sha,
    }
    response = Client().post(
        "/api/v1/deployments/",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(user)}"},
    )
    assert response.status_code == 201, response.content
    return Deployment.objects.get(pk=response.json()["id"])


def _add_tier_label(service: Service) -> None:
    service.deployment_template = service.deployment_template.replace(
        "      labels: {app: {{service}}}\n", TIER
    )
    service.save()


def _running(kubesim: KubesimHandle, environment: Environment, name: str) -> Any:
    return client.AppsV1Api(kubesim.api_client()).read_namespaced_deployment(
        name, environment.namespace
    )


def test_a_template_changed_between_the_request_and_the_claim_is_not_what_is_applied(
    bob: User, staging: Environment, kubesim: KubesimHandle, request: pytest.FixtureRequest
) -> None:
    service = factories.make_service("steady")
    deployment = _post(bob, service, staging)
    recorded = deployment.rendered_manifests
    _add_tier_label(service)  # after the request, before any worker claimed it
    request.getfixturevalue("worker")
    deployment = wait_until_terminal(deployment)
    assert deployment.status == Status.DONE, deployment.status_reason
    running = _running(kubesim, staging, "steady")
    assert "tier" not in running.spec.template.metadata.labels
    assert deployment.rendered_manifests == recorded
    assert "tier: web" not in deployment.rendered_manifests


def test_secret_values_are_stored_encrypted_and_applied_as_rendered(
    bob: User, staging: Environment, kubesim: KubesimHandle, request: pytest.FixtureRequest
) -> None:
    service = factories.make_service("vault", extra_templates=SECRET)
    deployment = _post(bob, service, staging)
    stored = json.dumps(deployment.manifest_documents)
    assert "s3cr3t-Pa55" not in stored
    assert "s3cr3t-Pa55" not in deployment.rendered_manifests
    assert "<redacted>" in deployment.rendered_manifests
    request.getfixturevalue("worker")
    deployment = wait_until_terminal(deployment)
    assert deployment.status == Status.DONE, deployment.status_reason
    secret = client.CoreV1Api(kubesim.api_client()).read_namespaced_secret(
        "vault-db", staging.namespace
    )
    values = {**(secret.string_data or {})}
    values.update({k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()})
    assert values["password"] == "s3cr3t-Pa55"


def test_a_cancelled_rollout_re_applies_the_recorded_manifests_of_the_earlier_deployment(
    alice: User, staging: Environment, kubesim: KubesimHandle, worker: threading.Event
) -> None:
    service = factories.make_service("api")
    old, new = factories.make_version(service), factories.make_version(service)
    first = wait_until_terminal(deploy(alice, service, staging, old).deployment)  # type: ignore[arg-type]
    assert first.status == Status.DONE, first.status_reason
    _add_tier_label(service)  # the new version's templates; the old one ran without the label
    kubesim.register_image(new.image, "notready")
    second = deploy(alice, service, staging, new).deployment
    assert second is not None
    wait_for(second, lambda d: d.applied_at is not None)
    assert _running(kubesim, staging, "api").spec.template.metadata.labels["tier"] == "web"
    cancel_deployment(user=alice, deployment=second)
    second = wait_until_terminal(second)
    assert second.status == Status.CANCELED, second.status_reason
    running = _running(kubesim, staging, "api")
    assert running.spec.template.spec.containers[0].image == old.image
    assert "tier" not in running.spec.template.metadata.labels


def test_rolling_back_a_finished_deployment_re_applies_what_ran_before_it(
    alice: User, staging: Environment, kubesim: KubesimHandle, worker: threading.Event
) -> None:
    service = factories.make_service("web")
    old, new = factories.make_version(service), factories.make_version(service)
    first = wait_until_terminal(deploy(alice, service, staging, old).deployment)  # type: ignore[arg-type]
    _add_tier_label(service)
    second = wait_until_terminal(deploy(alice, service, staging, new).deployment)  # type: ignore[arg-type]
    assert (first.status, second.status) == (Status.DONE, Status.DONE)
    response = login(alice).post(f"/deployments/{second.pk}/redeploy/", {"which": "previous"})
    revert = Deployment.objects.exclude(pk__in=[first.pk, second.pk]).get()
    assert response["Location"] == f"/deployments/{revert.pk}/"
    assert revert.version == old
    # The same documents (PostgreSQL's jsonb keeps no key order, so compare them parsed).
    assert list(yaml.safe_load_all(revert.rendered_manifests)) == list(
        yaml.safe_load_all(first.rendered_manifests)
    )
    assert "tier: web" not in revert.rendered_manifests
    revert = wait_until_terminal(revert)
    assert revert.status == Status.DONE, revert.status_reason
    running = _running(kubesim, staging, "web")
    assert running.spec.template.spec.containers[0].image == old.image
    assert "tier" not in running.spec.template.metadata.labels
