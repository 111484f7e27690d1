"""What the worker saw, on the deployment: Events, the Deployment's conditions, pod reasons; the
pods of the *new* ReplicaSet decide; a snapshot and log lines after a failure as well."""

import time

import pytest
from django.contrib.auth.models import User

from deployments.models import Deployment, Service
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy, wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

TEMPLATE_WITH_REPOSITORY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{service}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{service}}}
  template:
    metadata:
      labels: {app: {{service}}}
    spec:
      containers:
        - name: app
          image: {{repository}}:{{sha}}
"""


def _deployed(
    user: User, service: Service, environment: Environment, *, last_event: str = "", **kw: object
) -> Deployment:
    version = kw.pop("version", None) or factories.make_version(service)
    outcome = deploy(user, service, environment, version, **kw)  # type: ignore[arg-type]
    assert outcome.deployment is not None, outcome.reason
    deployment = wait_until_terminal(outcome.deployment, timeout=40)
    # The verdict is recorded first; Events still on their way follow within a second (those
    # of a rollout's last moments: the pods' Started, when `last_event` names it).
    deadline = time.monotonic() + 5
    while (
        not any(last_event in m for m in _messages(deployment, "event"))
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
        deployment.refresh_from_db()
    return deployment


def _messages(deployment: Deployment, source: str) -> list[str]:
    return [e["message"] for e in deployment.timeline if e["source"] == source]


def test_the_timeline_records_events_and_conditions(bob: User, staging: Environment) -> None:
    first = _deployed(bob, factories.make_service("web"), staging, last_event="Started Pod/web-")
    assert first.status == Status.DONE, first.status_reason
    events = _messages(first, "event")
    assert any("ScalingReplicaSet Deployment/web: Scaled up replica set web-" in m for m in events)
    assert any(m.startswith("Normal SuccessfulCreate ReplicaSet/web-") for m in events)
    assert any("Started Pod/web-" in m for m in events)
    conditions = _messages(first, "condition")
    assert any(m.startswith("Available=True") for m in conditions)
    assert any("NewReplicaSetAvailable" in m for m in conditions)

    # The next rollout records its own Events, not the first one's again (Event timestamps
    # have whole seconds, so a rollout's window starts a second early: keep them apart).
    time.sleep(1.5)
    second = _deployed(bob, first.service, staging, last_event="Started Pod/web-")
    assert second.status == Status.DONE, second.status_reason
    first_pods = {m.split(":")[0].split("Pod/")[1] for m in events if "Started Pod/" in m}
    again = [m for m in _messages(second, "event") if "Started" in m]
    assert again
    assert not any(pod in m for pod in first_pods for m in again)


def test_old_crashing_pods_of_the_same_commit_do_not_fail_a_fixed_redeploy(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service = factories.make_service(
        "mended",
        deployment_template=TEMPLATE_WITH_REPOSITORY,
        default_variables={"repository": "registry.example.com/crashloop-mended"},
    )
    version = factories.make_version(service)
    # The crash-looping image is not the service's: the manifest policy must allow it.
    service.allowed_sidecar_images = [
        f"registry.example.com/crashloop-mended:{version.git_commit_sha}"
    ]
    service.save()
    broken = _deployed(bob, service, staging, version=version)
    assert broken.status == Status.FAILED
    assert "crash-looping" in broken.status_reason
    # Same commit, fixed configuration: a new ReplicaSet whose pods start; the old pods of the
    # same sha keep crash-looping until the rollout replaces them.
    service.default_variables = {"repository": "registry.example.com/mended"}
    service.save()
    # Its pods take a while to be ready: long enough to see the old pods crash meanwhile.
    kubesim.register_image(
        f"registry.example.com/mended:{version.git_commit_sha}", "slow", seconds=3
    )
    fixed = _deployed(bob, service, staging, version=version)
    assert fixed.status == Status.DONE, fixed.status_reason


def test_a_failed_rollout_stores_a_snapshot_and_the_unready_pods_log(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    staging.rollout_timeout_seconds = 6
    staging.save()
    service = factories.make_service("sleepy")
    version = factories.make_version(service)
    kubesim.register_image(version.image, "notready")
    failed = _deployed(bob, service, staging, version=version)
    assert failed.status == Status.FAILED
    assert failed.environment_snapshot["services"]["sleepy"]["sha"] == version.git_commit_sha
    assert _messages(failed, "logs"), failed.timeline
    assert any("Unhealthy Pod/sleepy-" in m for m in _messages(failed, "event"))
