"""Scaling a group goes through the Deployment's `scale` subresource, not a patch of the Deployment.

kubesim records, like a 1.22+ API server, which subresource a write came through: a write to
`.../deployments/<name>/scale` leaves a managedFields entry marked `subresource: scale`, where
a PATCH of the Deployment itself leaves one without it."""

from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from kubernetes import client

from deployments.models import Group
from deployments.services.deploy import request_deployment
from deployments.services.groups import scale_group
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _replicas_writers(obj: Any) -> set[tuple[str, str, str]]:
    """(manager, operation, subresource) of every managedFields entry owning spec.replicas."""
    return {
        (m.manager, m.operation, m.subresource or "")
        for m in obj.metadata.managed_fields or []
        if "f:replicas" in ((m.fields_v1 or {}).get("f:spec") or {})
    }


def _deployed_groups(alice: User, staging: Environment) -> dict[str, Group]:
    service = factories.make_service("ingest", deployed_per_group=True)
    groups = {
        name: Group.objects.create(
            service=service, environment=staging, name=name, scaling_factor=replicas
        )
        for name, replicas in {"eu": 2, "us": 1}.items()
    }
    version = factories.make_version(service)
    for group in groups.values():
        outcome = request_deployment(
            user=alice, service=service, environment=staging, version=version, group=group
        )
        assert outcome.deployment is not None, outcome.reason
        deployment = wait_until_terminal(outcome.deployment)
        assert deployment.status == Status.DONE, deployment.status_reason
    return groups


def test_scaling_a_group_writes_replicas_through_the_scale_subresource(
    alice: User, bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    groups = _deployed_groups(alice, staging)
    apps = client.AppsV1Api(kubesim.api_client())
    before = apps.read_namespaced_deployment("ingest-eu", staging.namespace)
    assert _replicas_writers(before) == {("apollo", "Apply", "")}

    assert scale_group(user=bob, group=groups["eu"], replicas=5) == "ingest-eu"

    after = apps.read_namespaced_deployment("ingest-eu", staging.namespace)
    assert after.spec.replicas == 5
    # The scale write took spec.replicas over from Apollo's apply, and came through /scale:
    # a PATCH of the Deployment would have left ("apollo", "Update", "") instead.
    assert _replicas_writers(after) == {("apollo", "Update", "scale")}
    (scale_entry,) = [m for m in after.metadata.managed_fields if m.subresource == "scale"]
    assert scale_entry.fields_v1 == {"f:spec": {"f:replicas": {}}}
    assert scale_entry.api_version == "apps/v1"
    # Apollo still applies everything else; the other group was not touched.
    (applied,) = [m for m in after.metadata.managed_fields if m.operation == "Apply"]
    assert applied.manager == "apollo"
    assert "f:template" in applied.fields_v1["f:spec"]
    other = apps.read_namespaced_deployment("ingest-us", staging.namespace)
    assert other.spec.replicas == 1
    assert _replicas_writers(other) == {("apollo", "Apply", "")}
    assert apps.read_namespaced_deployment_scale("ingest-eu", staging.namespace).spec.replicas == 5


def test_kubesim_tells_a_plain_patch_from_a_scale_subresource_write(
    staging: Environment, kubesim: KubesimHandle
) -> None:
    """The check above can fail: the same replicas change as a Deployment patch looks different."""
    apps = client.AppsV1Api(kubesim.api_client())
    body = factories.DEPLOYMENT_TEMPLATE.replace("{{service}}", "probe")
    manifest = yaml.safe_load(body.replace("{{replicas}}", "1").replace("{{image}}", "busybox"))
    apps.create_namespaced_deployment(staging.namespace, manifest, field_manager="apollo")
    apps.patch_namespaced_deployment(
        "probe", staging.namespace, {"spec": {"replicas": 3}}, field_manager="apollo"
    )
    patched = apps.read_namespaced_deployment("probe", staging.namespace)
    assert _replicas_writers(patched) == {("apollo", "Update", "")}
    apps.patch_namespaced_deployment_scale(
        "probe", staging.namespace, {"spec": {"replicas": 4}}, field_manager="apollo"
    )
    scaled = apps.read_namespaced_deployment("probe", staging.namespace)
    assert scaled.spec.replicas == 4
    assert _replicas_writers(scaled) == {("apollo", "Update", "scale")}
