"""Attack (issue #10, High): a deployment took over another service's Service object
(server-side apply with force, no ownership check). Apollo applies an object only if it does
not exist or carries this service's (and group's) identity labels; otherwise the deployment
ends FAILED naming the owner, and nothing of it is applied. Through the real worker and the
official client against kubesim."""

import pytest
from django.contrib.auth.models import User
from kubernetes import client

from deployments.models import Group, Service
from deployments.services.deploy import request_deployment
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy, wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _service_template(name: str) -> str:
    return (
        "apiVersion: v1\nkind: Service\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  selector: {app: {{service}}}\n  ports: [{port: 80}]\n"
    )


def _deploy(user: User, service: Service, environment: Environment) -> tuple[str, str]:
    outcome = deploy(user, service, environment, factories.make_version(service))
    assert outcome.deployment is not None, outcome.reason
    deployment = wait_until_terminal(outcome.deployment)
    return deployment.status, deployment.status_reason


def _core(kubesim: KubesimHandle) -> client.CoreV1Api:
    return client.CoreV1Api(kubesim.api_client())


def _deployment_names(kubesim: KubesimHandle, namespace: str) -> list[str]:
    apps = client.AppsV1Api(kubesim.api_client())
    return [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items]


def test_a_service_cannot_take_over_another_services_service_object(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    payments = factories.make_service("payments", service_template=_service_template("payments"))
    assert _deploy(alice, payments, staging)[0] == Status.DONE
    evil = factories.make_service("evil", service_template=_service_template("payments"))
    status, reason = _deploy(alice, evil, staging)
    assert status == Status.FAILED
    assert "Service/payments exists and belongs to another owner: service payments" in reason
    kept = _core(kubesim).read_namespaced_service("payments", staging.namespace)
    assert kept.spec.selector == {"app": "payments", "apollo.io/service": "payments"}
    assert kept.metadata.labels["apollo.io/service"] == "payments"
    assert "evil" not in _deployment_names(kubesim, staging.namespace)  # nothing applied


def test_an_object_apollo_did_not_create_is_left_alone(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    _core(kubesim).create_namespaced_config_map(
        staging.namespace,
        {
            "metadata": {"name": "shared-config", "labels": {"team": "platform"}},
            "data": {"mode": "production"},
        },
    )
    service = factories.make_service(
        "greedy",
        extra_templates="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared-config}\n"
        "data: {mode: hijacked}\n",
    )
    status, reason = _deploy(alice, service, staging)
    assert status == Status.FAILED
    assert "ConfigMap/shared-config exists and was not created by Apollo" in reason
    assert "team=platform" in reason
    kept = _core(kubesim).read_namespaced_config_map("shared-config", staging.namespace)
    assert kept.data == {"mode": "production"}
    assert "greedy" not in _deployment_names(kubesim, staging.namespace)


def test_a_service_named_like_a_group_suffix_cannot_take_over_that_groups_deployment(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    ingest = factories.make_service("ingest", deployed_per_group=True)
    group = Group.objects.create(service=ingest, environment=staging, name="eu")
    outcome = request_deployment(
        user=alice,
        service=ingest,
        environment=staging,
        version=factories.make_version(ingest),
        group=group,
    )
    assert outcome.deployment is not None, outcome.reason
    assert wait_until_terminal(outcome.deployment).status == Status.DONE
    # Its Deployment is "ingest-eu": the name of a service "ingest-eu" without a group.
    impostor = factories.make_service("ingest-eu")
    status, reason = _deploy(alice, impostor, staging)
    assert status == Status.FAILED
    assert "Deployment/ingest-eu exists and belongs to another owner: service ingest, group eu" in (
        reason
    )
    apps = client.AppsV1Api(kubesim.api_client())
    kept = apps.read_namespaced_deployment("ingest-eu", staging.namespace)
    assert kept.metadata.labels["apollo.io/service"] == "ingest"


def test_the_owner_deploys_again_over_its_own_objects(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    payments = factories.make_service("payments", service_template=_service_template("payments"))
    assert _deploy(alice, payments, staging)[0] == Status.DONE
    assert _deploy(alice, payments, staging)[0] == Status.DONE


def _ingress_template(name: str) -> str:
    return (
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  rules:\n    - host: '{{host}}'\n      http:\n        paths:\n"
        "          - {path: /, pathType: Prefix, backend: {service: {name: '{{service}}', "
        "port: {number: 80}}}}\n"
    )


def test_an_ingress_cannot_claim_the_host_another_service_serves(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    payments = factories.make_service(
        "payments",
        ingress_template=_ingress_template("{{service}}"),
        default_variables={"host": "pay.example.com"},
    )
    assert _deploy(alice, payments, staging)[0] == Status.DONE
    # A manage holder points another service's host variable at it.
    evil = factories.make_service(
        "evil",
        ingress_template=_ingress_template("{{service}}"),
        default_variables={"host": "pay.example.com"},
    )
    status, reason = _deploy(alice, evil, staging)
    assert status == Status.FAILED
    assert "host pay.example.com is already served by Ingress/payments" in reason
    assert "(service: payments)" in reason
    networking = client.NetworkingV1Api(kubesim.api_client())
    names = [i.metadata.name for i in networking.list_namespaced_ingress(staging.namespace).items]
    assert names == ["payments"]
    assert "evil" not in _deployment_names(kubesim, staging.namespace)
    # The owner itself deploys again over its own host.
    assert _deploy(alice, payments, staging)[0] == Status.DONE


def test_pods_labelled_like_another_service_get_none_of_its_traffic(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    payments = factories.make_service("payments", service_template=_service_template("payments"))
    assert _deploy(alice, payments, staging)[0] == Status.DONE
    # evil's pods carry payments' app label, hoping payments' Service routes to them.
    evil = factories.make_service(
        "evil",
        deployment_template=factories.DEPLOYMENT_TEMPLATE.replace(
            "abels: {app: {{service}}}", "abels: {app: payments}"
        ),
    )
    assert _deploy(alice, evil, staging)[0] == Status.DONE
    core = _core(kubesim)
    selector = core.read_namespaced_service("payments", staging.namespace).spec.selector
    chosen = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    pods = core.list_namespaced_pod(staging.namespace, label_selector=chosen).items
    assert pods
    assert {p.metadata.labels["apollo.io/service"] for p in pods} == {"payments"}
    evil_pods = core.list_namespaced_pod(staging.namespace, label_selector="app=payments").items
    assert "evil" in {p.metadata.labels["apollo.io/service"] for p in evil_pods}
