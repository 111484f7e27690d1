"""Drift of the pod template: env vars, resources, labels and annotations changed outside
Apollo are named; what the API server defaults and what Kubernetes or Apollo itself writes
(pod-template-hash, a rolling restart's restartedAt) is not drift."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from kubernetes import client

from deployments.models import Service
from environments import kube
from environments.live.template_drift import template_drift
from environments.models import Environment
from environments.services import rollout_restart
from tests.environments.sockets import communicator, deployed, receive_until

IMAGE = "registry.example.com/web:" + "a" * 40


def _template(**container: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web"}, "annotations": {"team": "payments"}},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": IMAGE,
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {
                            "name": "POD_IP",
                            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                        },
                    ],
                    "resources": {"limits": {"cpu": "0.5", "memory": "256Mi"}},
                    "ports": [{"containerPort": 8080}],
                    **container,
                }
            ]
        },
    }


def _as_the_api_server_returns_it(template: dict[str, Any]) -> dict[str, Any]:
    """The same template with what an API server defaults and writes."""
    container = dict(template["spec"]["containers"][0])
    container["env"] = [
        {"name": "LOG_LEVEL", "value": "info"},
        {
            "name": "POD_IP",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}},
        },
    ]
    container["resources"] = {
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "requests": {"cpu": "500m", "memory": "256Mi"},
    }
    container["ports"] = [{"containerPort": 8080, "protocol": "TCP"}]
    container["imagePullPolicy"] = "IfNotPresent"
    container["terminationMessagePath"] = "/dev/termination-log"
    return {
        "metadata": {
            "labels": {"app": "web", "pod-template-hash": "5d9f8c7b6"},
            "annotations": {
                "team": "payments",
                "kubectl.kubernetes.io/restartedAt": "2026-11-30T09:00:00Z",
            },
        },
        "spec": {
            "containers": [container],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "terminationGracePeriodSeconds": 30,
        },
    }


def test_defaults_and_fields_kubernetes_writes_are_not_drift() -> None:
    applied = _template()
    assert template_drift(_as_the_api_server_returns_it(applied), applied) == []


def test_an_env_var_changed_added_or_removed_is_named_without_its_value() -> None:
    applied = _template()
    running = _as_the_api_server_returns_it(applied)
    env = running["spec"]["containers"][0]["env"]
    env[0]["value"] = "debug-with-a-secret-token"
    env.append({"name": "FEATURE_X", "value": "on"})
    del env[1]
    differences = template_drift(running, applied)
    assert differences == [
        "env FEATURE_X added (container web)",
        "env LOG_LEVEL changed (container web)",
        "env POD_IP removed (container web)",
    ]
    assert not any("debug-with" in d for d in differences)


def test_annotations_and_labels_added_or_changed_outside_apollo_are_named() -> None:
    applied = _template()
    running = _as_the_api_server_returns_it(applied)
    running["metadata"]["annotations"]["sidecar.example.com/inject"] = "true"
    running["metadata"]["annotations"]["team"] = "search"
    running["metadata"]["labels"]["tier"] = "gold"
    assert template_drift(running, applied) == [
        "label tier added",
        "annotation sidecar.example.com/inject added",
        "annotation team changed",
    ]


def test_resources_are_compared_by_value_and_named_with_both_values() -> None:
    applied = _template()
    running = _as_the_api_server_returns_it(applied)
    running["spec"]["containers"][0]["resources"]["limits"]["memory"] = "512Mi"
    assert template_drift(running, applied) == [
        "resources limits.memory: 512Mi runs, Apollo applied 256Mi (container web)"
    ]


def test_another_field_apollo_applied_that_changed_is_named() -> None:
    applied = _template(readinessProbe={"httpGet": {"path": "/ready", "port": 8080}})
    running = _as_the_api_server_returns_it(applied)
    running["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
        "timeoutSeconds": 1,
    }
    running["spec"]["containers"][0]["command"] = ["/bin/sh", "-c", "sleep 1d"]
    assert template_drift(running, applied) == [
        "readinessProbe changed (container web)",
        "command added (container web)",
    ]


WITH_ENV = """\
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
      annotations: {team: payments}
    spec:
      containers:
        - name: app
          image: {{image}}
          env:
            - {name: LOG_LEVEL, value: info}
          resources:
            limits: {cpu: 250m, memory: 128Mi}
"""


def _patch(environment: Environment, patch: dict[str, Any]) -> None:
    """A strategic merge patch, as `kubectl set env` / `kubectl annotate` send it."""
    apps = client.AppsV1Api(kube.api_client(environment.cluster))
    apps.patch_namespaced_deployment(
        "web",
        environment.namespace,
        patch,
        _content_type="application/strategic-merge-patch+json",
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
async def test_apollos_rolling_restart_is_not_drift_and_kubectl_set_env_is(
    alice: User, carol: User, staging: Environment
) -> None:
    service: Service = await sync_to_async(deployed)(
        alice, staging, "web", replicas=1, deployment_template=WITH_ENV
    )
    socket = await communicator(f"/ws/environments/{staging.name}/status/", carol)
    assert (await socket.connect(timeout=10))[0]
    first = await receive_until(socket, lambda m: "web-" in m["html"] and m["reachable"])
    assert "drifted" not in first["html"]

    await sync_to_async(rollout_restart)(user=alice, environment=staging, service=service)
    # kubectl set env deployment/web LOG_LEVEL=debug, after Apollo's own restart: the only
    # difference named is the env var (not the restartedAt annotation nor the new hash).
    await sync_to_async(_patch)(
        staging,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "env": [{"name": "LOG_LEVEL", "value": "debug"}]}
                        ]
                    }
                }
            }
        },
    )
    state = await receive_until(socket, lambda m: "drifted" in m["html"])
    assert "env LOG_LEVEL changed (container app)" in state["html"]
    assert "restartedAt" not in state["html"]
    assert "pod-template-hash" not in state["html"]
    assert "debug" not in state["html"]

    await sync_to_async(_patch)(
        staging,
        {"spec": {"template": {"metadata": {"annotations": {"owner": "someone-else"}}}}},
    )
    state = await receive_until(socket, lambda m: "annotation owner added" in m["html"])
    assert "env LOG_LEVEL changed (container app)" in state["html"]
    await socket.disconnect()
