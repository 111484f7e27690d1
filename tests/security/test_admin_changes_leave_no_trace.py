"""Attack (issue #10, audit): a staff member changed a service's templates, an environment's
variables or a cluster's credentials in the admin and left no trace (only grants and blockers
were recorded). These tests failed on the code before the audit trail: no event was written.
Now each change is a history event with who and a diff, on the History page, and no secret
(cluster token, API key, kubeconfig contents) ever appears in an event or on that page."""

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.models import Service
from environments.models import Cluster, Environment
from history.models import AuditEvent
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

TOKEN = "kube-token-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
NEW_TOKEN = "kube-token-ffeeddccbbaa99887766554433221100"


def _service_form(**changes: str) -> dict[str, Any]:
    return {
        "name": "checkout",
        "image_repository": "registry.example.com/checkout",
        "git_repository_url": "",
        "deployment_template": factories.DEPLOYMENT_TEMPLATE,
        "service_template": "",
        "ingress_template": "",
        "extra_templates": "",
        "default_variables": "{}",
        **changes,
    }


def _environment_form(environment: Environment, **changes: Any) -> dict[str, Any]:
    return {
        "name": environment.name,
        "cluster": environment.cluster_id,
        "namespace": environment.namespace,
        "availability": environment.availability,
        "region": environment.region,
        "node_port_coefficient": environment.node_port_coefficient,
        "variables": "{}",
        "concurrency_limit": environment.concurrency_limit,
        "rollout_timeout_seconds": environment.rollout_timeout_seconds,
        **changes,
    }


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_a_template_change_in_the_admin_is_recorded_with_a_unified_diff(alice: User) -> None:
    client = login(alice)
    assert client.post("/admin/deployments/service/add/", _service_form()).status_code == 302
    service = Service.objects.get(name="checkout")
    template = factories.DEPLOYMENT_TEMPLATE.replace("- name: app", "- name: web")
    assert template != factories.DEPLOYMENT_TEMPLATE
    url = f"/admin/deployments/service/{service.pk}/change/"
    form = _service_form(deployment_template=template, git_repository_url="https://git.example/c")
    response = client.post(url, form)
    assert response.status_code == 302
    (created,) = _events("service.created")
    (changed,) = _events("service.changed")
    assert (created.actor, changed.actor) == (alice, alice)
    assert changed.service_id == service.pk
    diff = changed.data["diffs"]["deployment_template"]
    assert "-        - name: app\n" in diff
    assert "+        - name: web\n" in diff
    rows = {row["field"]: row for row in changed.data["changes"]}
    assert rows["git_repository_url"]["before"] == ""
    assert rows["git_repository_url"]["after"] == "https://git.example/c"
    page = client.get("/history/", {"kind": "service"}).content.decode()
    assert "Changed deployment_template, git_repository_url of service checkout" in page
    assert "+        - name: web" in page


def test_an_environment_change_and_deletion_in_the_admin_are_recorded(alice: User) -> None:
    environment = factories.make_environment("qa", availability="staging")
    client = login(alice)
    form = _environment_form(environment, variables='{"host": "qa.example"}', region="eu")
    url = f"/admin/environments/environment/{environment.pk}/change/"
    assert client.post(url, form).status_code == 302
    (changed,) = _events("environment.changed")
    rows = {row["field"]: (row["before"], row["after"]) for row in changed.data["changes"]}
    assert rows == {"region": ("", "eu"), "variables": ("{}", '{"host": "qa.example"}')}
    assert changed.environment_id == environment.pk
    delete = f"/admin/environments/environment/{environment.pk}/delete/"
    assert client.post(delete, {"post": "yes"}).status_code == 302
    (deleted,) = _events("environment.deleted")
    assert deleted.actor == alice
    assert deleted.summary == "Deleted environment qa"


def test_a_cluster_token_change_is_recorded_as_changed_never_its_value(
    alice: User, tmp_path: Path
) -> None:
    client = login(alice)
    form = {
        "name": "prod",
        "connection": "token",
        "api_url": "https://k8s.example.com:6443",
        "token": TOKEN,
        "verify_tls": "on",
    }
    assert client.post("/admin/environments/cluster/add/", form).status_code == 302
    cluster = Cluster.objects.get(name="prod")
    url = f"/admin/environments/cluster/{cluster.pk}/change/"
    assert client.post(url, {**form, "token": NEW_TOKEN}).status_code == 302
    (changed,) = _events("cluster.changed")
    assert changed.data["changes"] == [
        {"field": "token", "before": "", "after": "(changed)", "secret": True}
    ]
    # A kubeconfig cluster records its path, never the file's contents.
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(f"users:\n- name: admin\n  user:\n    token: {NEW_TOKEN}x\n")
    form = {
        "name": "local",
        "connection": "kubeconfig",
        "kubeconfig_path": str(kubeconfig),
        "kubeconfig_context": "kind",
        "verify_tls": "on",
    }
    assert client.post("/admin/environments/cluster/add/", form).status_code == 302
    stored = [str(e.data) + e.summary for e in AuditEvent.objects.all()]
    page = client.get("/history/", {"kind": "cluster"}).content.decode()
    assert "token" in page
    assert "(changed)" in page
    for secret in (TOKEN, NEW_TOKEN, cluster.token_ciphertext):
        assert not any(secret in text for text in stored)
        assert secret not in page


def test_an_api_key_never_appears_in_an_event(alice: User, bob: User) -> None:
    key = factories.token_for(bob, "laptop")
    events = AuditEvent.objects.filter(action="token.issued")
    assert events.exists()
    assert not any(key in str(e.data) or key in e.summary for e in events)
    assert key not in login(alice).get("/history/", {"kind": "token"}).content.decode()
