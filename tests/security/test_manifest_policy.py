"""Attack (issue #10, High): the next routine deploy ran a privileged, hostNetwork container
with an unregistered image, another service account and another service's Secret. The
manifest policy refuses them when the deployment is requested (400 with the reason, nothing
created) and the worker checks again what it is about to apply (FAILED, nothing applied)."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from kubernetes import client

from deployments import policy
from deployments.models import Deployment, Service
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy, wait_until_terminal

SHA = "0123456789abcdef0123456789abcdef01234567"
IMAGE = f"registry.example.com/checkout:{SHA}"
POD = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{service}}
spec:
  replicas: 1
  selector: {matchLabels: {app: {{service}}}}
  template:
    metadata: {labels: {app: {{service}}}}
    spec:
"""
APP = """\
      containers:
        - name: app
          image: {{image}}
"""
ATTACKS = [
    pytest.param(
        APP + "        - {name: miner, image: registry.example.com/evil:latest}\n",
        "runs image 'registry.example.com/evil:latest'",
        id="unregistered-image",
    ),
    pytest.param(
        APP + "      initContainers: [{name: init, image: 'busybox:1'}]\n",
        "container 'init' runs image 'busybox:1'",
        id="init-container-image",
    ),
    pytest.param(
        APP + "      ephemeralContainers: [{name: debug, image: 'busybox:1'}]\n",
        "container 'debug' runs image 'busybox:1'",
        id="ephemeral-container-image",
    ),
    pytest.param(
        APP + "          securityContext: {privileged: true}\n",
        "is privileged",
        id="privileged",
    ),
    pytest.param(
        APP + "          securityContext: {allowPrivilegeEscalation: true}\n",
        "allowPrivilegeEscalation",
        id="privilege-escalation",
    ),
    pytest.param(
        APP + "          securityContext: {capabilities: {add: [SYS_ADMIN]}}\n",
        "adds capabilities",
        id="capabilities",
    ),
    pytest.param(
        APP + "          ports: [{containerPort: 80, hostPort: 80}]\n",
        "binds a hostPort",
        id="host-port",
    ),
    pytest.param(
        APP + "      securityContext: {windowsOptions: {hostProcess: true}}\n",
        "hostProcess container",
        id="host-process",
    ),
    pytest.param(APP + "      hostNetwork: true\n", "hostNetwork", id="host-network"),
    pytest.param(APP + "      hostPID: true\n", "hostPID", id="host-pid"),
    pytest.param(APP + "      hostIPC: true\n", "hostIPC", id="host-ipc"),
    pytest.param(
        APP + "      volumes: [{name: root, hostPath: {path: /}}]\n",
        "hostPath volume 'root'",
        id="host-path",
    ),
    pytest.param(
        APP + "      serviceAccountName: cluster-admin\n",
        "service account 'cluster-admin' is not allowed",
        id="service-account",
    ),
    pytest.param(
        APP + "      serviceAccount: cluster-admin\n",
        "service account 'cluster-admin' is not allowed",
        id="deprecated-service-account",
    ),
    pytest.param(
        APP + "      automountServiceAccountToken: true\n",
        "automountServiceAccountToken",
        id="automount-token",
    ),
    pytest.param(
        APP + "          envFrom: [{secretRef: {name: payments-db}}]\n",
        "Secret 'payments-db' is not allowed",
        id="env-from-secret",
    ),
    pytest.param(
        APP
        + "          env: [{name: P, valueFrom: {secretKeyRef: {name: payments-db, key: p}}}]\n",
        "Secret 'payments-db' is not allowed",
        id="secret-key-ref",
    ),
    pytest.param(
        APP + "      volumes: [{name: s, secret: {secretName: payments-db}}]\n",
        "Secret 'payments-db' is not allowed",
        id="secret-volume",
    ),
    pytest.param(
        APP + "      volumes: [{name: s, projected: {sources: [{secret: {name: payments-db}}]}}]\n",
        "Secret 'payments-db' is not allowed",
        id="projected-secret-volume",
    ),
    pytest.param(
        APP + "      imagePullSecrets: [{name: payments-pull}]\n",
        "Secret 'payments-pull' is not allowed",
        id="image-pull-secret",
    ),
]


def _service(template: str, **extra: Any) -> Service:
    return factories.make_service(
        "checkout",
        image_repository="registry.example.com/checkout",
        deployment_template=POD + template,
        **extra,
    )


def _request(user: User, service: Service) -> Any:
    factories.make_version(service, SHA)
    return Client().post(
        "/api/v1/deployments/",
        json.dumps({"service": service.name, "environment": "staging", "git_commit_sha": SHA}),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(user)}"},
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("template", "reason"), ATTACKS)
def test_the_request_is_refused_with_the_reason_and_nothing_is_created(
    bob: User, template: str, reason: str
) -> None:
    factories.make_environment("staging", availability="staging")
    response = _request(bob, _service(template))
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert "manifest policy" in detail
    assert reason in detail
    assert not Deployment.objects.exists()


@pytest.mark.django_db
def test_the_reason_is_shown_on_the_deploy_results_page(bob: User) -> None:
    environment = factories.make_environment("staging", availability="staging")
    service = _service(APP + "      hostNetwork: true\n")
    factories.make_version(service, SHA)
    page = Client()
    page.force_login(bob)
    response = page.post(
        "/deploy/", {"environments": [environment.pk], "services": [service.pk], "version": SHA}
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "the manifest policy refuses checkout" in html
    assert "hostNetwork is not allowed in this environment" in html
    assert not Deployment.objects.exists()


@pytest.mark.django_db
def test_the_service_allow_lists_and_the_environment_setting_let_them_through(bob: User) -> None:
    factories.make_environment("staging", availability="staging", allow_privileged_workloads=True)
    template = (
        APP
        + "          securityContext: {privileged: true, capabilities: {add: [NET_ADMIN]}}\n"
        + "          envFrom: [{secretRef: {name: checkout-db}}]\n"
        + "        - {name: proxy, image: 'registry.example.com/tools/proxy:1.4'}\n"
        + "      hostNetwork: true\n"
        + "      serviceAccountName: checkout\n"
        + "      imagePullSecrets: [{name: registry}]\n"
        + "      volumes: [{name: own, secret: {secretName: checkout-config}}]\n"
    )
    own_secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: checkout-config}\n"
    service = _service(
        template,
        extra_templates=own_secret,
        allowed_sidecar_images=["registry.example.com/tools/proxy:1.4"],
        allowed_service_accounts=["checkout"],
        allowed_secrets=["checkout-db", "registry"],
    )
    response = _request(bob, service)
    assert response.status_code == 201, response.content


POD_SPEC: dict[str, Any] = {"containers": [{"name": "x", "image": "busybox:1"}], "hostPID": True}
OTHER_KINDS: list[dict[str, Any]] = [
    {"kind": "Pod", "metadata": {"name": "p"}, "spec": POD_SPEC},
    {"kind": "StatefulSet", "metadata": {"name": "s"}, "spec": {"template": {"spec": POD_SPEC}}},
    {"kind": "DaemonSet", "metadata": {"name": "d"}, "spec": {"template": {"spec": POD_SPEC}}},
    {"kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"spec": POD_SPEC}}},
    {"kind": "ReplicaSet", "metadata": {"name": "r"}, "spec": {"template": {"spec": POD_SPEC}}},
    {
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": POD_SPEC}}}},
    },
    {"kind": "PodTemplate", "metadata": {"name": "t"}, "template": {"spec": POD_SPEC}},
]


@pytest.mark.parametrize("doc", OTHER_KINDS, ids=[d["kind"] for d in OTHER_KINDS])
def test_pod_specs_of_every_workload_kind_are_checked(doc: dict[str, Any]) -> None:
    problems = policy.violations([doc], policy.Rules(image=IMAGE))
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    assert f"{where}: container 'x' runs image 'busybox:1'; only {IMAGE}" in problems[0]
    assert f"{where}: hostPID is not allowed in this environment" in problems


# -- the worker checks again what it applies -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_privilege_withdrawn_after_the_request_fails_in_the_worker_and_nothing_is_applied(
    alice: User, staging: Environment, kubesim: KubesimHandle, request: pytest.FixtureRequest
) -> None:
    # The worker applies the manifests recorded at the request (tests/deployments/
    # test_render_once.py), and checks them again against today's policy.
    staging.allow_privileged_workloads = True
    staging.save()
    service = factories.make_service(
        "sneaky", deployment_template=POD + APP + "      hostNetwork: true\n"
    )
    outcome = deploy(alice, service, staging, factories.make_version(service))
    assert outcome.deployment is not None, outcome.reason
    staging.allow_privileged_workloads = False  # an admin's change after validation
    staging.save()
    request.getfixturevalue("worker")
    deployment = wait_until_terminal(outcome.deployment)
    assert deployment.status == Status.FAILED
    assert "manifest policy" in deployment.status_reason
    assert "hostNetwork is not allowed in this environment" in deployment.status_reason
    apps = client.AppsV1Api(kubesim.api_client())
    names = [d.metadata.name for d in apps.list_namespaced_deployment(staging.namespace).items]
    assert "sneaky" not in names
    page = Client()
    page.force_login(alice)
    html = page.get(f"/deployments/{deployment.pk}/").content.decode()
    assert "hostNetwork is not allowed in this environment" in html


@pytest.mark.django_db
def test_an_ingress_may_not_serve_with_another_services_tls_secret(bob: User) -> None:
    factories.make_environment("staging", availability="staging")
    ingress = (
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: checkout}\n"
        "spec:\n  tls: [{hosts: [checkout.example.com], secretName: payments-tls}]\n"
    )
    response = _request(bob, _service(APP, ingress_template=ingress))
    assert response.status_code == 400, response.content
    assert "Ingress/checkout: TLS Secret 'payments-tls' is not allowed" in response.json()["detail"]
    assert not Deployment.objects.exists()
