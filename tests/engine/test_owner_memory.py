"""The owner check a deployment skips (issue #16): an object this worker process applied or
watched last carrying the document's identity is not read again before the next apply; the
version it saw goes with the apply as a precondition. So a change by any other writer between
two deployments (another field manager relabelling, editing, deleting or replacing the object)
is noticed: the API server refuses the stale version and the owner is checked again, and
another owner's object is never applied over. Through the real worker against kubesim (and the
real control plane)."""

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from kubernetes import client

from deployments.engine.worker import Run
from deployments.manifests import render_for
from deployments.models import Deployment, Service
from deployments.rendering import LABEL_SERVICE
from deployments.status import Status
from environments import kube
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy, wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

SERVICE_TEMPLATE = (
    "apiVersion: v1\nkind: Service\nmetadata: {name: '{{service}}'}\n"
    "spec:\n  selector: {app: '{{service}}'}\n  ports: [{port: 80}]\n"
)


@pytest.fixture
def failing_cluster(kubesim: KubesimHandle) -> Iterator[KubesimHandle]:
    """kubesim answering every API request 500 or 503 while the test runs."""
    try:
        yield kubesim
    finally:
        kubesim.reset_faults()


def _deploy(user: User, service: Service, environment: Environment) -> tuple[str, str, str]:
    version = factories.make_version(service)
    outcome = deploy(user, service, environment, version)
    assert outcome.deployment is not None, outcome.reason
    done = wait_until_terminal(outcome.deployment)
    return done.status, done.status_reason, version.git_commit_sha


def _documents(service: Service, environment: Environment) -> dict[str, dict[str, Any]]:
    version = factories.make_version(service)
    docs = render_for(service=service, environment=environment, version=version, group=None)
    return {doc["kind"]: doc for doc in docs}


def _image(kubesim: KubesimHandle, environment: Environment, name: str) -> str:
    apps = client.AppsV1Api(kubesim.api_client())
    running = apps.read_namespaced_deployment(name, environment.namespace)
    return str(running.spec.template.spec.containers[0].image)


def test_a_deployment_remembers_what_it_applied_for_the_next_owner_check(
    alice: User, staging: Environment
) -> None:
    web = factories.make_service("remembered", service_template=SERVICE_TEMPLATE)
    assert _deploy(alice, web, staging)[0] == Status.DONE
    documents = _documents(web, staging)
    for kind in ("Deployment", "Service"):
        assert kube.known_version(staging.cluster, staging.namespace, documents[kind])
    # Another service's document of the same name carries another identity: read, not trusted.
    impostor = factories.make_service("impostor")
    other = _documents(impostor, staging)["Deployment"]
    other["metadata"]["name"] = "remembered"
    assert kube.known_version(staging.cluster, staging.namespace, other) is None


def test_another_field_manager_relabelling_the_deployment_between_two_deploys_is_noticed(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    web = factories.make_service("relabelled")
    status, _, first = _deploy(alice, web, staging)
    assert status == Status.DONE
    client.AppsV1Api(kubesim.api_client()).patch_namespaced_deployment(
        "relabelled",
        staging.namespace,
        {"metadata": {"labels": {LABEL_SERVICE: "intruder"}}},
        field_manager="someone-else",
    )
    status, reason, _ = _deploy(alice, web, staging)
    assert status == Status.FAILED
    assert "Deployment/relabelled exists and belongs to another owner: service intruder" in reason
    assert _image(kubesim, staging, "relabelled") == f"registry.example.com/relabelled:{first}"


def test_another_field_managers_edit_between_two_deploys_is_checked_again_and_applied(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    web = factories.make_service("edited")
    assert _deploy(alice, web, staging)[0] == Status.DONE
    client.AppsV1Api(kubesim.api_client()).patch_namespaced_deployment(
        "edited",
        staging.namespace,
        {"metadata": {"annotations": {"team": "platform"}}},
        field_manager="someone-else",
    )
    status, reason, second = _deploy(alice, web, staging)
    assert status == Status.DONE, reason
    assert _image(kubesim, staging, "edited") == f"registry.example.com/edited:{second}"


def test_an_object_replaced_by_a_hand_made_one_between_two_deploys_is_left_alone(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    web = factories.make_service("replaced", service_template=SERVICE_TEMPLATE)
    assert _deploy(alice, web, staging)[0] == Status.DONE
    core = client.CoreV1Api(kubesim.api_client())
    core.delete_namespaced_service("replaced", staging.namespace)
    core.create_namespaced_service(
        staging.namespace,
        {
            "metadata": {"name": "replaced", "labels": {"team": "platform"}},
            "spec": {"selector": {"app": "platform"}, "ports": [{"port": 81}]},
        },
    )
    status, reason, _ = _deploy(alice, web, staging)
    assert status == Status.FAILED
    assert "Service/replaced exists and was not created by Apollo" in reason
    kept = core.read_namespaced_service("replaced", staging.namespace)
    assert kept.spec.selector == {"app": "platform"}
    assert kept.metadata.labels == {"team": "platform"}


def test_an_object_deleted_between_two_deploys_is_created_again(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    web = factories.make_service("deleted", service_template=SERVICE_TEMPLATE)
    assert _deploy(alice, web, staging)[0] == Status.DONE
    core = client.CoreV1Api(kubesim.api_client())
    core.delete_namespaced_service("deleted", staging.namespace)
    status, reason, _ = _deploy(alice, web, staging)
    assert status == Status.DONE, reason
    created = core.read_namespaced_service("deleted", staging.namespace)
    assert created.metadata.labels[LABEL_SERVICE] == "deleted"


@pytest.mark.kubesim_only  # (fault injection)
def test_the_owner_checks_of_objects_it_saw_last_send_no_request(
    alice: User, staging: Environment, failing_cluster: KubesimHandle
) -> None:
    web = factories.make_service("unasked", service_template=SERVICE_TEMPLATE)
    assert _deploy(alice, web, staging)[0] == Status.DONE
    run = Run(Deployment.objects.get(service=web), "test", threading.Event())
    documents = _documents(web, staging)
    unknown = _documents(factories.make_service("never-applied"), staging)["Deployment"]
    failing_cluster.set_faults(error_rate=1.0)
    # What it applied and watched: answered from what it saw, while every request fails.
    checked = run.check_owners([documents["Deployment"], documents["Service"]])
    assert checked == {
        ("Deployment", "unasked"): kube.known_version(
            staging.cluster, staging.namespace, documents["Deployment"]
        ),
        ("Service", "unasked"): kube.known_version(
            staging.cluster, staging.namespace, documents["Service"]
        ),
    }
    assert all(checked.values())
    # An object it never saw is read: the check does not answer cleanly (the caller retries).
    assert run.check_owners([documents["Deployment"], unknown]) is None
