"""Rendering templates into manifests: variables, escaping, labels, tags, nodePorts, secrets."""

import dataclasses
from typing import Any

import pytest
import yaml

from deployments import rendering
from deployments.rendering import RenderError, Target

SHA = "0123456789abcdef0123456789abcdef01234567"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{service}}
spec:
  replicas: {{replicas}}
  selector: {matchLabels: {app: {{service}}}}
  template:
    metadata: {labels: {app: {{service}}}}
    spec:
      containers:
        - name: app
          image: {{image}}
          env:
            - {name: GREETING, value: "{{greeting}}"}
        - name: sidecar
          image: registry.example.com/tools/proxy
        - name: pinned
          image: registry.example.com:5000/tools/agent:1.2
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: {{service}}}
spec:
  type: NodePort
  selector: {app: {{service}}}
  ports: [{port: 80, nodePort: 30080}, {port: 81}]
"""


BASE = Target(
    service="checkout",
    image_repository="registry.example.com/shop/checkout",
    sha=SHA,
    environment="production",
    namespace="prod",
    availability="production",
    region="eu-west",
    node_port_coefficient=100,
)


def target(**overrides: Any) -> Target:
    return dataclasses.replace(BASE, **overrides)


def render(
    templates: list[tuple[str, str]], t: Target, *layers: dict[str, Any]
) -> list[dict[str, Any]]:
    variables = rendering.build_variables(t, *layers)
    return rendering.finalize(rendering.render_documents(templates, variables), t)


def test_apollos_variables_win_over_service_environment_and_group_layers() -> None:
    variables = rendering.build_variables(
        target(),
        {"greeting": "service", "image": "evil"},
        {"greeting": "environment"},
        {"greeting": "group"},
    )
    assert variables["greeting"] == "group"
    assert variables["image"] == f"registry.example.com/shop/checkout:{SHA}"
    assert variables["namespace"] == "prod"


def test_the_group_scaling_factor_sets_replicas_and_a_layer_may_not() -> None:
    assert rendering.build_variables(target(replicas=5), {"replicas": 2})["replicas"] == 5
    assert rendering.build_variables(target(), {"replicas": 2})["replicas"] == 2
    assert rendering.build_variables(target(), {})["replicas"] == 1


def test_values_are_not_html_escaped() -> None:
    [doc] = render([("deployment", DEPLOYMENT)], target(), {"greeting": "a<b & 'c'"})
    env = doc["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "GREETING", "value": "a<b & 'c'"}]


def test_an_undefined_variable_is_reported_by_name() -> None:
    with pytest.raises(RenderError, match="undefined variables: greeting"):
        render([("deployment", DEPLOYMENT)], target())


def test_untagged_images_get_the_sha_and_tagged_ones_are_kept() -> None:
    [doc] = render([("deployment", DEPLOYMENT)], target(), {"greeting": "hi"})
    images = [c["image"] for c in doc["spec"]["template"]["spec"]["containers"]]
    assert images == [
        f"registry.example.com/shop/checkout:{SHA}",
        f"registry.example.com/tools/proxy:{SHA}",
        "registry.example.com:5000/tools/agent:1.2",
    ]


def test_identity_labels_and_namespace_are_added() -> None:
    [doc] = render([("deployment", DEPLOYMENT)], target(), {"greeting": "hi"})
    expected = {
        "app.kubernetes.io/managed-by": "apollo",
        "apollo.io/service": "checkout",
        "apollo.io/environment": "production",
        "apollo.io/commit-sha": SHA,
    }
    assert expected.items() <= doc["metadata"]["labels"].items()
    assert expected.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
    assert doc["metadata"]["namespace"] == "prod"
    # The selector is immutable in Kubernetes: Apollo must not change it without a group.
    assert doc["spec"]["selector"] == {"matchLabels": {"app": "checkout"}}


def test_node_ports_get_the_environment_coefficient() -> None:
    docs = render([("deployment", DEPLOYMENT), ("service", SERVICE)], target(), {"greeting": "hi"})
    ports = docs[1]["spec"]["ports"]
    assert ports == [{"port": 80, "nodePort": 30180}, {"port": 81}]


def test_a_group_suffixes_names_and_narrows_selectors() -> None:
    docs = render(
        [("deployment", DEPLOYMENT), ("service", SERVICE)],
        target(group="eu", replicas=3),
        {"greeting": "hi"},
    )
    deployment, service = docs
    assert deployment["metadata"]["name"] == "checkout-eu"
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"]["matchLabels"]["apollo.io/group"] == "eu"
    assert deployment["spec"]["template"]["metadata"]["labels"]["apollo.io/group"] == "eu"
    assert service["metadata"]["name"] == "checkout-eu"
    assert service["spec"]["selector"]["apollo.io/group"] == "eu"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("kind: Deployment\nmetadata: {name: x}\nspec: [", "not valid YAML"),
        ("kind: CronJob\nmetadata: {name: x}\n", "kind 'CronJob' is not one Apollo applies"),
        ("kind: Deployment\nmetadata: {}\n", "metadata.name is required"),
        ("- a list\n", "a manifest must be a mapping"),
        ("{{#open}}\n", "deployment template"),
    ],
)
def test_broken_templates_are_refused_with_a_clear_message(template: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render([("deployment", template)], target(), {"open": True})


def test_templates_without_a_deployment_are_refused() -> None:
    with pytest.raises(RenderError, match="must produce a Deployment"):
        render([("service", SERVICE)], target())


def test_secret_values_are_redacted_in_what_is_stored() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"password": "aHVudGVyMg=="},
        "stringData": {"token": "s3cr3t"},
    }
    shown = rendering.to_yaml([secret])
    assert "aHVudGVyMg==" not in shown
    assert "s3cr3t" not in shown
    assert yaml.safe_load(shown)["data"] == {"password": rendering.REDACTED}
    assert "s3cr3t" in rendering.to_yaml([secret], redact_secrets=False)
