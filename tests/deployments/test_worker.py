"""The worker against kubesim, through the official kubernetes client over TLS."""

import pytest
from django.contrib.auth.models import User
from kubernetes import client

from deployments.engine import worker as worker_module
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import SERVICE_TEMPLATE, deploy, wait_for, wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _apps(kubesim: KubesimHandle) -> client.AppsV1Api:
    return client.AppsV1Api(kubesim.api_client())


def test_bob_deploys_to_staging_and_the_rollout_ends_done(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service = factories.make_service(
        "checkout",
        service_template=SERVICE_TEMPLATE,
        default_variables={"node_port": 30080},
    )
    version = factories.make_version(service)
    outcome = deploy(bob, service, staging, version, message="first")
    assert outcome.kind == "created", outcome.reason
    deployment = wait_until_terminal(outcome.deployment)  # type: ignore[arg-type]
    assert deployment.status == Status.DONE, deployment.status_reason
    assert "rollout complete" in deployment.status_reason
    running = _apps(kubesim).read_namespaced_deployment("checkout", staging.namespace)
    assert running.spec.template.spec.containers[0].image == version.image
    assert running.metadata.labels["app.kubernetes.io/managed-by"] == "apollo"
    assert deployment.environment_snapshot["services"]["checkout"]["sha"] == (
        version.git_commit_sha
    )
    sources = {entry["source"] for entry in deployment.timeline}
    assert {"worker", "rollout"} <= sources


def test_a_missing_image_ends_failed_naming_the_image(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service = factories.make_service("ghost")
    version = factories.make_version(service)
    kubesim.mark_image_missing(version.image)
    outcome = deploy(bob, service, staging, version)
    deployment = wait_until_terminal(outcome.deployment)  # type: ignore[arg-type]
    assert deployment.status == Status.FAILED
    assert f"image {version.image} not found" in deployment.status_reason


def test_a_crash_loop_ends_failed_with_the_last_log_lines(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service = factories.make_service("crashy")
    version = factories.make_version(service)
    kubesim.register_image(version.image, "crashloop", seconds=0.05)
    outcome = deploy(bob, service, staging, version)
    deployment = wait_until_terminal(outcome.deployment, timeout=40)  # type: ignore[arg-type]
    assert deployment.status == Status.FAILED
    assert "crash-looping" in deployment.status_reason
    assert any(entry["source"] == "logs" for entry in deployment.timeline)


def test_a_rollout_that_never_becomes_ready_times_out(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    staging.rollout_timeout_seconds = 10
    staging.save()
    service = factories.make_service("sleepy")
    version = factories.make_version(service)
    kubesim.register_image(version.image, "notready")
    outcome = deploy(bob, service, staging, version)
    deployment = wait_until_terminal(outcome.deployment, timeout=30)  # type: ignore[arg-type]
    assert deployment.status == Status.FAILED
    assert "did not finish within 10 s" in deployment.status_reason


def test_alice_cancels_a_slow_rollout_and_the_previous_version_runs_again(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    from deployments.services.deploy import cancel_deployment

    service = factories.make_service("api")
    old, new = factories.make_version(service), factories.make_version(service)
    first = wait_until_terminal(deploy(alice, service, staging, old).deployment)  # type: ignore[arg-type]
    assert first.status == Status.DONE
    kubesim.register_image(new.image, "notready")
    second = deploy(alice, service, staging, new).deployment
    assert second is not None
    assert second.source_version == old
    wait_for(second, lambda d: d.applied_at is not None)
    cancel_deployment(user=alice, deployment=second)
    second = wait_until_terminal(second)
    assert second.status == Status.CANCELED, second.status_reason
    running = _apps(kubesim).read_namespaced_deployment("api", staging.namespace)
    assert running.spec.template.spec.containers[0].image == old.image


def test_an_unreachable_cluster_fails_the_deployment_with_the_reason(
    bob: User, staging: Environment, kubesim: KubesimHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "APPLY_ATTEMPTS", 2)
    staging.cluster.api_url = "https://127.0.0.1:1"  # nothing listens there
    staging.cluster.save()
    service = factories.make_service("lonely")
    outcome = deploy(bob, service, staging, factories.make_version(service))
    deployment = wait_until_terminal(outcome.deployment)  # type: ignore[arg-type]
    assert deployment.status == Status.FAILED
    assert "unreachable after 2 attempts" in deployment.status_reason
