"""Attack (issue #10, High): a `manage` holder's variable value closing a quoted string
injected a privileged, hostNetwork container with another image, service account and Secret
into the next routine deploy. A value must always stay one scalar: it round-trips as exactly
the string given, and the documents keep the structure they have with a harmless value."""

import json
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.test import Client

from deployments.manifests import render_for
from deployments.models import Deployment, Group, Service
from environments.models import Environment
from tests import factories

pytestmark = pytest.mark.django_db

SHA = "0123456789abcdef0123456789abcdef01234567"
TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{service}}
  annotations: {note: {{note}}}
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
            - {name: DOUBLE, value: "{{queue}}"}
            - {name: SINGLE, value: '{{queue}}'}
            - {name: PLAIN, value: {{queue}}}
            - name: BLOCK
              value: |
                {{queue}}
            - name: JOINED
              value: pre-{{queue}}-post
"""
HARMLESS = "harmless"
INJECTION = (
    'x"}\n'
    "        - name: evil\n"
    "          image: registry.example.com/evil:latest\n"
    "          securityContext: {privileged: true}\n"
    "          envFrom: [{secretRef: {name: payments-db}}]\n"
    "      hostNetwork: true\n"
    "      serviceAccountName: cluster-admin\n"
    "---\n"
    "apiVersion: networking.k8s.io/v1\n"
    "kind: Ingress\n"
    'metadata: {name: takeover, x: "'
)
VALUES = [
    pytest.param('say "hi"', id="double-quotes"),
    pytest.param("it's", id="single-quote"),
    pytest.param('x"}, {name: EVIL, value: "1', id="closing-a-flow-mapping"),
    pytest.param("line one\nline two\n  indented", id="newlines"),
    pytest.param("a\n---\nkind: Ingress\nmetadata: {name: evil}", id="document-separator"),
    pytest.param("a # not a comment", id="hash"),
    pytest.param("# all comment", id="leading-hash"),
    pytest.param("{privileged: true}", id="flow-mapping"),
    pytest.param("[a, b]", id="flow-sequence"),
    pytest.param("&anchor value", id="anchor"),
    pytest.param("*alias", id="alias"),
    pytest.param("!!python/object:os.system", id="tag"),
    pytest.param("key: value", id="colon"),
    pytest.param("- item", id="dash"),
    pytest.param("|\n  block", id="block-indicator"),
    pytest.param("", id="empty"),
    pytest.param(INJECTION, id="the-attack"),
]


def _setup(queue: str) -> tuple[Service, Environment, Group]:
    environment = factories.make_environment("staging", availability="staging")
    service = factories.make_service(
        "ingest",
        deployment_template=TEMPLATE,
        default_variables={"note": "n"},
        deployed_per_group=True,
    )
    group = Group.objects.create(
        service=service, environment=environment, name="eu", variables={"queue": queue}
    )
    return service, environment, group


def _render(queue: str) -> list[dict[str, Any]]:
    service, environment, group = _setup(queue)
    version = factories.make_version(service, SHA)
    return render_for(service=service, environment=environment, version=version, group=group)


def _replace(obj: Any, old: str, new: str) -> Any:
    """The documents with every string `old` (and `old` inside strings) replaced by `new`."""
    if isinstance(obj, dict):
        return {_replace(k, old, new): _replace(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace(v, old, new) for v in obj]
    if isinstance(obj, str):
        return obj.replace(old, new)
    return obj


@pytest.mark.parametrize("value", VALUES)
def test_a_variable_value_is_always_exactly_one_scalar(value: str) -> None:
    harmless = _render(HARMLESS)
    Environment.objects.all().delete()
    Service.objects.all().delete()
    rendered = _render(value)
    assert rendered == _replace(harmless, HARMLESS, value)
    env = rendered[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    values = {e["name"]: e["value"] for e in env}
    assert values["DOUBLE"] == value
    assert values["SINGLE"] == value
    assert values["PLAIN"] == value
    assert values["JOINED"] == f"pre-{value}-post"
    assert values["BLOCK"] == f"{value}\n"


def test_the_attack_through_a_group_variable_deploys_only_what_the_template_says(
    bob: User,
) -> None:
    service, _, _ = _setup(INJECTION)
    factories.make_version(service, SHA)
    response = Client().post(
        "/api/v1/deployments/",
        json.dumps(
            {"service": "ingest", "environment": "staging", "git_commit_sha": SHA, "group": "eu"}
        ),
        content_type="application/json",
        headers={"Authorization": f"Token {factories.token_for(bob)}"},
    )
    assert response.status_code == 201, response.content
    deployment = Deployment.objects.get()
    [stored] = list(yaml.safe_load_all(deployment.rendered_manifests))
    [doc] = render_for(
        service=service,
        environment=deployment.environment,
        version=deployment.version,
        group=deployment.group,
    )
    assert stored == doc
    pod = doc["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == f"registry.example.com/ingest:{SHA}"
    assert {e["name"]: e["value"] for e in container["env"]}["DOUBLE"] == INJECTION
    assert "hostNetwork" not in pod
    assert "serviceAccountName" not in pod
