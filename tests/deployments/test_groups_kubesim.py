"""Groups against kubesim with the real worker: every group at once, scaling, cancelling one."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from kubernetes import client

from deployments.models import DeployableVersion, Deployment, Group, Service
from deployments.services.deploy import request_deployment
from deployments.services.groups import ScalingRefused, scale_group, update_group
from deployments.status import Status
from environments.models import Environment
from history.models import AuditEvent
from kubesim.testing import KubesimHandle
from tests import factories
from tests.conftest import login
from tests.kubeenv import wait_for, wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

# The image is untagged: Apollo tags it with the sha. {{flavour}} lets one group run an image
# kubesim treats differently from the others.
GROUPED_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{service}}
spec:
  replicas: {{replicas}}
  selector:
    matchLabels: {app: {{service}}}
  template:
    metadata:
      labels: {app: {{service}}}
    spec:
      containers:
        - name: app
          image: registry.example.com/{{service}}{{flavour}}
          env:
            - {name: ZONE, value: "{{zone}}"}
"""
REPLICAS = {"eu": 2, "us": 3, "apac": 1}


def _apps(kubesim: KubesimHandle) -> client.AppsV1Api:
    return client.AppsV1Api(kubesim.api_client())


def _grouped(staging: Environment, *, apac_flavour: str = "") -> tuple[Service, dict[str, Group]]:
    staging.variables = {"zone": "from-the-environment"}
    staging.save()
    service = factories.make_service(
        "ingest",
        deployment_template=GROUPED_TEMPLATE,
        default_variables={"flavour": "", "zone": "default"},
        deployed_per_group=True,
    )
    groups = {
        name: Group.objects.create(
            service=service,
            environment=staging,
            name=name,
            scaling_factor=replicas,
            variables={
                "zone": f"zone-{name}",
                **({"flavour": apac_flavour} if name == "apac" else {}),
            },
        )
        for name, replicas in REPLICAS.items()
    }
    return service, groups


def _deploy_all(
    user: User, service: Service, environment: Environment, version: DeployableVersion
) -> list[Deployment]:
    """Through the Deploy page: one environment, one service, "All groups"."""
    response = login(user).post(
        "/deploy/",
        {
            "environments": [environment.pk],
            "services": [service.pk],
            "sha": version.git_commit_sha,
            "all_groups": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return list(Deployment.objects.filter(version=version).order_by("group_key"))


def test_alice_deploys_to_all_groups_at_once_and_each_copy_reaches_done_with_its_replicas(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service, _ = _grouped(staging)
    version = factories.make_version(service)
    deployments = _deploy_all(alice, service, staging, version)
    assert [d.group_key for d in deployments] == ["apac", "eu", "us"]
    assert len({d.batch for d in deployments}) == 1
    assert deployments[0].batch is not None
    done = [wait_until_terminal(deployment) for deployment in deployments]
    for deployment in done:
        assert deployment.status == Status.DONE, deployment.status_reason
    apps = _apps(kubesim)
    for name, replicas in REPLICAS.items():
        running = apps.read_namespaced_deployment(f"ingest-{name}", staging.namespace)
        assert running.spec.replicas == replicas
        assert running.status.ready_replicas == replicas
        assert running.spec.selector.match_labels["apollo.io/group"] == name
        assert running.spec.template.metadata.labels["apollo.io/group"] == name
        container = running.spec.template.spec.containers[0]
        assert container.image == f"registry.example.com/ingest:{version.git_commit_sha}"
        assert {e.name: e.value for e in container.env}["ZONE"] == f"zone-{name}"
    # Each copy's snapshot (the namespace as its verdict found it) holds its own group's
    # Deployment at the new version, keyed service/group. Not every group in one snapshot: the
    # three run at once, and one may take its snapshot before another group's Deployment is
    # applied yet finish after it (the run that failed: the last by finished_at had no
    # ingest/us, on a loaded machine).
    for deployment in done:
        own = deployment.environment_snapshot["services"][f"ingest/{deployment.group_key}"]
        assert own["group"] == deployment.group_key
        assert own["sha"] == version.git_commit_sha
    status = login(alice).get(f"/deployments/batch/{deployments[0].batch}/status/").json()
    assert status["summary"] == {"DONE": 3}


def test_scaling_one_group_scales_its_deployment_only_and_is_recorded(
    alice: User, bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service, groups = _grouped(staging)
    version = factories.make_version(service)
    for deployment in _deploy_all(alice, service, staging, version):
        assert wait_until_terminal(deployment).status == Status.DONE
    name = scale_group(user=bob, group=groups["eu"], replicas=4)
    assert name == "ingest-eu"
    apps = _apps(kubesim)
    assert apps.read_namespaced_deployment("ingest-eu", staging.namespace).spec.replicas == 4
    assert apps.read_namespaced_deployment("ingest-us", staging.namespace).spec.replicas == 3
    groups["eu"].refresh_from_db()
    assert groups["eu"].scaling_factor == 4
    event = AuditEvent.objects.get(action="group.scaled")
    assert event.actor == bob
    assert "from 2 to 4" in event.summary
    # The next deployment keeps the new replica count.
    following = request_deployment(
        user=alice,
        service=service,
        environment=staging,
        version=factories.make_version(service),
        group=groups["eu"],
    ).deployment
    assert following is not None
    assert "replicas: 4" in following.rendered_manifests


def test_a_locked_group_is_not_scaled(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service, groups = _grouped(staging)
    version = factories.make_version(service)
    for deployment in _deploy_all(alice, service, staging, version):
        assert wait_until_terminal(deployment).status == Status.DONE
    update_group(
        user=alice, group=groups["us"], scaling_locked=True, scaling_lock_reason="Black Friday"
    )
    with pytest.raises(ScalingRefused, match="locked: Black Friday"):
        scale_group(user=alice, group=groups["us"], replicas=1)
    apps = _apps(kubesim)
    assert apps.read_namespaced_deployment("ingest-us", staging.namespace).spec.replicas == 3
    assert not AuditEvent.objects.filter(action="group.scaled").exists()


def test_alice_cancels_one_group_while_the_others_finish(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service, _ = _grouped(staging, apac_flavour="-slow")
    old, new = factories.make_version(service), factories.make_version(service)
    # The manifest policy runs only allowed images: apac's is a sidecar image an admin allowed.
    service.allowed_sidecar_images = [
        f"registry.example.com/ingest-slow:{v.git_commit_sha}" for v in (old, new)
    ]
    service.save()
    for deployment in _deploy_all(alice, service, staging, old):
        assert wait_until_terminal(deployment).status == Status.DONE
    # apac runs its own image: only its rollout of the new version never becomes ready.
    kubesim.register_image(f"registry.example.com/ingest-slow:{new.git_commit_sha}", "notready")
    by_group = {d.group_key: d for d in _deploy_all(alice, service, staging, new)}
    wait_for(by_group["apac"], lambda d: d.applied_at is not None)
    batch = by_group["apac"].batch
    response = login(alice).post(
        f"/deployments/batch/{batch}/cancel/", {"deployment": by_group["apac"].pk}
    )
    assert response.status_code == 302
    results: dict[str, Any] = {g: wait_until_terminal(d) for g, d in by_group.items()}
    assert results["apac"].status == Status.CANCELED, results["apac"].status_reason
    assert results["eu"].status == Status.DONE, results["eu"].status_reason
    assert results["us"].status == Status.DONE, results["us"].status_reason
    apps = _apps(kubesim)
    image = apps.read_namespaced_deployment("ingest-apac", staging.namespace).spec.template.spec
    assert image.containers[0].image.endswith(old.git_commit_sha)
    eu = apps.read_namespaced_deployment("ingest-eu", staging.namespace).spec.template.spec
    assert eu.containers[0].image.endswith(new.git_commit_sha)


def test_cancel_all_cancels_every_running_deployment_of_the_batch(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service, _ = _grouped(staging)
    old, new = factories.make_version(service), factories.make_version(service)
    # The manifest policy runs only allowed images: apac's is a sidecar image an admin allowed.
    service.allowed_sidecar_images = [
        f"registry.example.com/ingest-slow:{v.git_commit_sha}" for v in (old, new)
    ]
    service.save()
    for deployment in _deploy_all(alice, service, staging, old):
        assert wait_until_terminal(deployment).status == Status.DONE
    kubesim.register_image(f"registry.example.com/ingest:{new.git_commit_sha}", "notready")
    deployments = _deploy_all(alice, service, staging, new)
    for deployment in deployments:
        wait_for(deployment, lambda d: d.applied_at is not None)
    client_ = login(alice)
    response = client_.post(f"/deployments/batch/{deployments[0].batch}/cancel/", {"all": "1"})
    assert response.status_code == 302
    for deployment in deployments:
        assert wait_until_terminal(deployment).status == Status.CANCELED


def test_bob_scales_groups_from_the_service_page_and_the_environment_page(
    alice: User, bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service, groups = _grouped(staging)
    version = factories.make_version(service)
    for deployment in _deploy_all(alice, service, staging, version):
        assert wait_until_terminal(deployment).status == Status.DONE
    client_ = login(bob)
    response = client_.post(
        f"/services/ingest/groups/{groups['apac'].pk}/scale/", {"replicas": 2}, follow=True
    )
    assert "ingest/apac scaled to 2" in response.content.decode()
    response = client_.post(
        f"/environments/{staging.name}/groups/{groups['us'].pk}/scale/",
        {"replicas": 1},
        follow=True,
    )
    assert "ingest/us scaled to 1" in response.content.decode()
    apps = _apps(kubesim)
    assert apps.read_namespaced_deployment("ingest-apac", staging.namespace).spec.replicas == 2
    assert apps.read_namespaced_deployment("ingest-us", staging.namespace).spec.replicas == 1
    assert apps.read_namespaced_deployment("ingest-eu", staging.namespace).spec.replicas == 2
    assert AuditEvent.objects.filter(action="group.scaled").count() == 2
