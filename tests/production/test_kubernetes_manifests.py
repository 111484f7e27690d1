"""deploy/: Apollo itself on Kubernetes (kustomize base + overlays).

All run in the cluster pass (APOLLO_TEST_CLUSTER=kubernetes, cluster/ci.sh), with the kubectl
cluster/build.sh builds. The first tests read what `kubectl kustomize` builds and hold it to the
promises of the README: two web and two worker replicas, probes on the health endpoints,
requests and limits, non-root, secrets only by reference. The others apply it to the real
control plane: server-side dry run first (nothing created), then for real, until both
Deployments are Available.
"""

from __future__ import annotations

import json
from typing import Any

from tests.production.kustomize import (
    DEPLOY,
    Installation,
    build,
    installation,
    needs_kubectl,
    needs_real_cluster,
)

__all__ = ["installation"]  # the fixture


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    specs = {name: d["spec"]["template"]["spec"] for name, d in by_kind(docs, "Deployment").items()}
    specs.update({name: d["spec"]["template"]["spec"] for name, d in by_kind(docs, "Job").items()})
    return specs


@needs_kubectl
def test_the_example_overlay_runs_two_web_and_two_worker_replicas_of_the_pinned_image() -> None:
    docs = build(DEPLOY / "overlays" / "example")
    deployments = by_kind(docs, "Deployment")
    assert {name: d["spec"]["replicas"] for name, d in deployments.items()} == {
        "apollo-web": 2,
        "apollo-worker": 2,
    }
    assert {
        doc["metadata"].get("namespace")
        for doc in docs
        if doc["kind"] not in {"ClusterRole", "ClusterRoleBinding"}
    } == {"apollo"}
    for spec in pod_specs(docs).values():
        for container in spec["containers"] + spec.get("initContainers", []):
            assert container["image"] == "registry.example.com/apollo:1.0.0"


@needs_kubectl
def test_the_web_is_probed_on_healthz_and_readyz_and_the_worker_waits_for_migrations() -> None:
    docs = build(DEPLOY / "base")
    web = pod_specs(docs)["apollo-web"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    worker = pod_specs(docs)["apollo-worker"]
    assert "migrate --check" in " ".join(worker["initContainers"][0]["command"])
    job = pod_specs(docs)["apollo-migrate"]["containers"][0]
    assert job["command"] == ["python", "manage.py", "migrate", "--noinput"]


@needs_kubectl
def test_every_container_is_non_root_limited_and_reads_secrets_only_by_reference() -> None:
    docs = build(DEPLOY / "base")
    assert not by_kind(docs, "Secret"), "no secret may be committed under deploy/"
    for name, spec in pod_specs(docs).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}, name
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, name
            assert {"secretRef": {"name": "apollo-secrets"}} in container["envFrom"], name
            assert "env" not in container, name  # no value spelled out beside the Secret


@needs_kubectl
def test_disruption_budgets_keep_one_web_and_one_worker_through_a_drain() -> None:
    docs = build(DEPLOY / "base")
    budgets = by_kind(docs, "PodDisruptionBudget")
    assert {name: b["spec"]["maxUnavailable"] for name, b in budgets.items()} == {
        "apollo-web": 1,
        "apollo-worker": 1,
    }
    for name, budget in budgets.items():
        selected = budget["spec"]["selector"]["matchLabels"]
        template = by_kind(docs, "Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        assert selected.items() <= template.items()


@needs_kubectl
def test_the_only_cluster_wide_permission_is_listing_ingresses() -> None:
    docs = build(DEPLOY / "base")
    (role,) = by_kind(docs, "ClusterRole").values()
    assert role["rules"] == [
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["list"]}
    ]
    target = build(DEPLOY / "overlays" / "example" / "targets" / "staging")
    (deployer,) = by_kind(target, "Role").values()
    assert deployer["metadata"]["namespace"] == "staging"
    granted = {
        (group, resource, verb)
        for rule in deployer["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert not any(verb in {"*", "escalate", "bind", "impersonate"} for *_, verb in granted)
    assert not any(resource.startswith(("roles", "rolebindings")) for _, resource, _ in granted)
    assert {(r, v) for _, r, v in granted if v == "delete"} == {("pods", "delete")}


# -- On the real control plane -------------------------------------------------------------------


@needs_kubectl
@needs_real_cluster
def test_the_manifests_pass_a_server_side_dry_run_and_create_nothing(
    installation: Installation,
) -> None:
    output = installation.kubectl(
        "apply", "-k", str(installation.overlay), "--server-side", "--dry-run=server"
    )
    name = f"deployment.apps/apollo-web{installation.suffix}"
    assert f"{name} serverside-applied (server dry run)" in output
    listed = json.loads(
        installation.kubectl(
            "get",
            "deployments,jobs,pdb,serviceaccounts",
            "-n",
            installation.namespace,
            "-o",
            "json",
        )
    )
    # (the namespace's own `default` ServiceAccount comes from its controller, when it comes)
    assert [
        i["metadata"]["name"] for i in listed["items"] if i["metadata"]["name"] != "default"
    ] == []


@needs_kubectl
@needs_real_cluster
def test_applied_for_real_both_deployments_become_available_and_the_migration_job_runs(
    installation: Installation,
) -> None:
    apply_for_real(installation)
    suffix = installation.suffix
    for name in ("apollo-web", "apollo-worker"):
        installation.kubectl(
            "-n",
            installation.namespace,
            "wait",
            "--for=condition=Available",
            f"deployment/{name}{suffix}",
            "--timeout=120s",
        )
        status = json.loads(
            installation.kubectl(
                "-n", installation.namespace, "get", f"deployment/{name}{suffix}", "-o", "json"
            )
        )["status"]
        assert (status["readyReplicas"], status["availableReplicas"]) == (2, 2), status
    pods = json.loads(
        installation.kubectl(
            "-n",
            installation.namespace,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/component=migrate",
            "-o",
            "json",
        )
    )["items"]
    assert pods, "the migration Job made no pod"
    assert pods[0]["spec"]["automountServiceAccountToken"] is False
    budget = json.loads(
        installation.kubectl(
            "-n", installation.namespace, "get", f"pdb/apollo-web{suffix}", "-o", "json"
        )
    )
    assert budget["status"]["expectedPods"] == 2


def apply_for_real(installation: Installation) -> None:
    # As the README tells the operator: the Secret first, by hand, never in a file under deploy/.
    installation.kubectl(
        "-n",
        installation.namespace,
        "create",
        "secret",
        "generic",
        "apollo-secrets",
        "--from-literal=SECRET_KEY=test-only-secret-key",
        "--from-literal=DATABASE_URL=postgres://apollo@postgres.example:5432/apollo",
        "--from-literal=REDIS_URL=redis://redis.example:6379/0",
        "--from-literal=APOLLO_CREDENTIALS_KEY=test-only-credentials-key",
    )
    installation.kubectl("apply", "-k", str(installation.overlay), "--server-side")
