"""Apollo in a pod: a cluster of the in-cluster kind reads the API server from
KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount's token and CA from the files the kubelet
mounts, and follows the projected token when the kubelet rotates it (no restart).

The files are laid out as the kubelet writes a projected volume (`token` -> `..data/token`,
`..data` -> a timestamped directory, swapped atomically on rotation). Runs on kubesim and on
the real control plane (cluster/ci.sh)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from environments import kube
from environments.models import Cluster

pytestmark = pytest.mark.django_db(transaction=True)


class ProjectedVolume:
    """A ServiceAccount volume as the kubelet writes it."""

    def __init__(self, root: Path, *, ca_pem: str) -> None:
        self.root = root
        self.ca_pem = ca_pem
        self.generation = 0
        root.mkdir(parents=True, exist_ok=True)
        (root / "token").symlink_to("..data/token")
        (root / "ca.crt").symlink_to("..data/ca.crt")

    def write(self, token: str) -> None:
        self.generation += 1
        payload = self.root / f"..2026_11_30_{self.generation:04d}"
        payload.mkdir()
        (payload / "token").write_text(token)
        (payload / "ca.crt").write_text(self.ca_pem)
        staged = self.root / "..data_tmp"
        staged.symlink_to(payload.name)
        os.replace(staged, self.root / "..data")  # the kubelet's atomic swap


@pytest.fixture
def pod_volume(kubesim: Any, tmp_path: Path, settings: Any, monkeypatch: Any) -> ProjectedVolume:
    address = urlsplit(kubesim.url)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", address.hostname or "")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(address.port))
    settings.APOLLO_SERVICEACCOUNT_DIR = str(tmp_path / "serviceaccount")
    return ProjectedVolume(tmp_path / "serviceaccount", ca_pem=kubesim.ca_cert_pem)


def _in_cluster() -> Cluster:
    return Cluster.objects.create(name="in-pod", connection=Cluster.Connection.IN_CLUSTER)


def test_an_in_cluster_cluster_reaches_the_api_server_with_the_pods_service_account(
    kubesim: Any, kubesim_namespace: str, pod_volume: ProjectedVolume
) -> None:
    pod_volume.write(kubesim.token)
    pods, version = kube.list_objects(_in_cluster(), "Pod", kubesim_namespace)
    assert pods == []
    assert version


def test_a_rotated_token_is_used_on_the_next_call_without_a_restart(
    kubesim: Any, kubesim_namespace: str, pod_volume: ProjectedVolume
) -> None:
    pod_volume.write("an-expired-token")
    cluster = _in_cluster()
    with pytest.raises(kube.KubeError):
        kube.list_objects(cluster, "Pod", kubesim_namespace)
    pod_volume.write(kubesim.token)  # the kubelet rotates the token
    kube.list_objects(cluster, "Pod", kubesim_namespace)
    pod_volume.write("revoked-again")  # and every change is followed, not only the first
    with pytest.raises(kube.KubeError):
        kube.list_objects(cluster, "Pod", kubesim_namespace)


def test_the_token_is_known_to_the_redaction_of_logs_and_error_pages(
    kubesim: Any, kubesim_namespace: str, pod_volume: ProjectedVolume
) -> None:
    pod_volume.write(kubesim.token)
    kube.list_objects(_in_cluster(), "Pod", kubesim_namespace)
    assert kubesim.token in kube.client_credentials()


@pytest.mark.parametrize("missing", ["host", "token", "ca"])
def test_outside_a_pod_it_says_which_setting_is_missing(
    kubesim: Any, pod_volume: ProjectedVolume, monkeypatch: Any, missing: str
) -> None:
    pod_volume.write(kubesim.token)
    if missing == "host":
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    else:
        (pod_volume.root / ("token" if missing == "token" else "ca.crt")).unlink()
    with pytest.raises(kube.ClusterUnreachable) as refused:
        kube.list_objects(_in_cluster(), "Pod", "default")
    expected = {"host": "KUBERNETES_SERVICE_HOST", "token": "token", "ca": "ca.crt"}[missing]
    assert expected in str(refused.value)
    assert kubesim.token not in str(refused.value)


def test_a_token_file_that_disappears_later_makes_the_cluster_unreachable_not_a_500(
    kubesim: Any, kubesim_namespace: str, pod_volume: ProjectedVolume
) -> None:
    pod_volume.write(kubesim.token)
    cluster = _in_cluster()
    kube.list_objects(cluster, "Pod", kubesim_namespace)
    (pod_volume.root / "token").unlink()
    with pytest.raises(kube.ClusterUnreachable):
        kube.list_objects(cluster, "Pod", kubesim_namespace)
