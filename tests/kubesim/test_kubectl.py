"""kubectl against kubesim with the generated kubeconfig; asserts what kubectl prints.

The kubectl is the one built from the project's pinned Kubernetes modules (`make kubectl`:
var/bin/kubectl); a machine without it uses one on PATH, else these tests are skipped."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kubesim.testing import KubesimHandle
from tests.kubesim.helpers import deployment, wait_for

BUILT = Path(__file__).resolve().parents[2] / "var" / "bin" / "kubectl"
KUBECTL = str(BUILT) if BUILT.exists() else shutil.which("kubectl")

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(
        KUBECTL is None, reason="no kubectl: build var/bin/kubectl with `make kubectl`"
    ),
]


class Kubectl:
    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        assert KUBECTL is not None
        self.base = [KUBECTL, "--kubeconfig", str(kubeconfig), "-n", namespace]

    def run(
        self, *args: str, timeout: float = 30, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.base, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result


@pytest.fixture
def kubectl(kubesim: KubesimHandle, kubesim_namespace: str) -> Kubectl:
    return Kubectl(kubesim.kubeconfig_path, kubesim_namespace)


def apply(kubectl: Kubectl, tmp_path: Path, body: dict[str, Any]) -> str:
    manifest = tmp_path / f"{body['metadata']['name']}.yaml"
    manifest.write_text(yaml.safe_dump(body))
    return kubectl.run("apply", "--server-side", "-f", str(manifest)).stdout


def test_apply_get_and_describe(kubectl: Kubectl, tmp_path: Path) -> None:
    out = apply(kubectl, tmp_path, deployment("web", replicas=2))
    assert out.strip() == "deployment.apps/web serverside-applied"
    status = kubectl.run("rollout", "status", "deployment/web", "--timeout=20s").stdout
    assert 'deployment "web" successfully rolled out' in status
    table = kubectl.run("get", "deployments").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["web", "2/2", "2", "2"]
    pods = kubectl.run("get", "pods", "-o", "wide").stdout.splitlines()
    assert pods[0].split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(pods) == 3
    assert all("Running" in line and "1/1" in line for line in pods[1:])
    described = kubectl.run("describe", "deployment", "web").stdout
    assert "NewReplicaSetAvailable" in described
    assert "Scaled up replica set web-" in described
    pod_name = pods[1].split()[0]
    described_pod = kubectl.run("describe", "pod", pod_name).stdout
    assert any(line.split() == ["Status:", "Running"] for line in described_pod.splitlines())
    assert "Successfully assigned" in described_pod


def test_rollout_status_fails_after_the_progress_deadline(kubectl: Kubectl, tmp_path: Path) -> None:
    apply(
        kubectl,
        tmp_path,
        deployment("broken", "registry.example/shop:missing", replicas=1, progress_deadline=2),
    )
    result = kubectl.run("rollout", "status", "deployment/broken", "--timeout=30s", check=False)
    assert result.returncode != 0
    assert 'deployment "broken" exceeded its progress deadline' in result.stderr
    pods = kubectl.run("get", "pods").stdout
    assert "ImagePullBackOff" in pods or "ErrImagePull" in pods


def test_logs_follow_with_tail(kubectl: Kubectl, kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(
        kubesim_namespace,
        {
            "metadata": {"name": "chatty", "annotations": {"kubesim.io/log-rate": "50"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example/web:1.0"}]},
        },
    )
    wait_for(
        lambda: core.read_namespaced_pod("chatty", kubesim_namespace).status.phase == "Running"
    )
    process = subprocess.Popen(
        [*kubectl.base, "logs", "-f", "--tail=3", "chatty"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(10)]
    finally:
        process.terminate()
        process.wait(5)
    assert all("[chatty]" in line for line in lines)
    assert kubectl.run("logs", "--tail=2", "chatty").stdout.count("\n") == 2


def test_exec_echo(kubectl: Kubectl, kubesim_api: Any, kubesim_namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(
        kubesim_namespace,
        {
            "metadata": {"name": "box"},
            "spec": {"containers": [{"name": "app", "image": "registry.example/web:1.0"}]},
        },
    )
    wait_for(lambda: core.read_namespaced_pod("box", kubesim_namespace).status.phase == "Running")
    assert (
        kubectl.run("exec", "-i", "box", "--", "echo", "hi", "there", stdin="").stdout
        == "hi there\n"
    )
    failed = kubectl.run("exec", "box", "--", "sh", "-c", "exit 7", check=False)
    assert failed.returncode == 7
    assert "command terminated with exit code 7" in failed.stderr


def test_delete_scale_restart_and_events(kubectl: Kubectl, tmp_path: Path) -> None:
    apply(kubectl, tmp_path, deployment("ops", replicas=2))
    kubectl.run("rollout", "status", "deployment/ops", "--timeout=20s")
    victim = kubectl.run("get", "pods", "-o", "name").stdout.split()[0]
    # kubectl 1.35+ adds "from <namespace> namespace".
    deleted = kubectl.run("delete", victim).stdout.strip()
    assert deleted.startswith(f'pod "{victim.split("/")[1]}" deleted'), deleted
    wait_for(
        lambda: (
            len(kubectl.run("get", "pods", "--no-headers").stdout.splitlines()) == 2
            and victim not in kubectl.run("get", "pods", "-o", "name").stdout
        )
    )
    assert (
        kubectl.run("scale", "deployment/ops", "--replicas=3").stdout.strip()
        == "deployment.apps/ops scaled"
    )
    wait_for(
        lambda: kubectl.run("get", "deployment", "ops", "--no-headers").stdout.split()[1] == "3/3"
    )
    assert (
        kubectl.run("rollout", "restart", "deployment/ops").stdout.strip()
        == "deployment.apps/ops restarted"
    )
    kubectl.run("rollout", "status", "deployment/ops", "--timeout=20s")
    sets = kubectl.run("get", "replicasets", "--no-headers").stdout.splitlines()
    assert len(sets) == 2
    events = kubectl.run("get", "events").stdout
    assert "ScalingReplicaSet" in events
    assert "SuccessfulCreate" in events
    assert "Killing" in events
