"""Helpers of the deploy/ tests: kubectl (var/bin/kubectl, built by cluster/build.sh) and an
installation of deploy/base into a namespace of the test's own, as an operator's overlay would."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import control_plane

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBECTL = control_plane.BINARY.parent / "kubectl"
IMAGE = "registry.example.com/apollo:0123456789abcdef0123456789abcdef01234567"

# Only in the cluster pass (cluster/ci.sh), where cluster/build.sh has finished: CI builds
# kubectl in the background while the other passes run, and a binary still being written
# must not be run.
needs_kubectl = pytest.mark.skipif(
    control_plane.selected() != "kubernetes" or not KUBECTL.exists(),
    reason=f"needs APOLLO_TEST_CLUSTER=kubernetes and {KUBECTL} (cluster/ci.sh)",
)
needs_real_cluster = pytest.mark.skipif(
    control_plane.selected() != "kubernetes", reason="needs APOLLO_TEST_CLUSTER=kubernetes"
)


def kubectl(*args: str, kubeconfig: Path | None = None, check: bool = True) -> str:
    command = [str(KUBECTL), *(["--kubeconfig", str(kubeconfig)] if kubeconfig else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def build(directory: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(directory))) if doc]


def write_overlay(directory: Path, kustomization: dict[str, Any]) -> Path:
    """An overlay directory; resources given relative to deploy/ (kustomize takes no absolute
    path, a relative one may leave the overlay's directory). JSON is YAML with every string
    quoted, so a suffix like -4e1234 stays a string."""
    directory.mkdir(parents=True)
    resources = [os.path.relpath(DEPLOY / r, directory) for r in kustomization["resources"]]
    body = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        **kustomization,
        "resources": resources,
    }
    (directory / "kustomization.yaml").write_text(json.dumps(body))
    return directory


@dataclass
class Installation:
    namespace: str
    suffix: str
    overlay: Path
    kubeconfig: Path

    @property
    def service_account(self) -> str:
        return f"apollo{self.suffix}"

    def kubectl(self, *args: str, check: bool = True) -> str:
        return kubectl(*args, kubeconfig=self.kubeconfig, check=check)


@pytest.fixture
def installation(kubesim: Any, tmp_path: Path) -> Iterator[Installation]:
    """deploy/base for a namespace of this test's own (not yet applied); everything it may
    create is deleted afterwards, the cluster-wide objects included."""
    suffix = f"-t{uuid.uuid4().hex[:6]}"
    namespace = f"apollo{suffix}"
    overlay = write_overlay(
        tmp_path / "overlay",
        {
            "namespace": namespace,
            "nameSuffix": suffix,  # cluster-scoped names must not collide with other tests'
            "resources": ["base"],
            "images": [
                {"name": "apollo", "newName": IMAGE.split(":")[0], "newTag": IMAGE.split(":")[1]}
            ],
        },
    )
    result = Installation(namespace, suffix, overlay, kubesim.kubeconfig_path)
    result.kubectl("create", "namespace", namespace)
    try:
        yield result
    finally:
        result.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        for kind in ("clusterrolebinding", "clusterrole"):
            name = f"{kind}/apollo-ingress-hosts{suffix}"
            result.kubectl("delete", name, "--ignore-not-found", check=False)
