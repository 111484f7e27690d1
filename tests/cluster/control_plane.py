"""The real Kubernetes control plane (cluster/, built by `make cluster` or cluster/build.sh) for
the tests: started once per session from the built binary, answering like `kubesim`'s handle for
what the cluster-switched tests use (url, token, CA, kubeconfig, api_client, register_image).

Image behaviours go into the ConfigMap the simulated nodes read (cluster/registry.go), through
the real API server. kubesim's fault injection, settings and outages have no equivalent here:
tests that need them are marked `kubesim_only`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(
    os.environ.get("APOLLO_KUBERNETES_BINARY", ROOT / "var" / "bin" / "apollo-kubernetes")
)
START_TIMEOUT = 180.0
REGISTRY = ("kube-system", "apollo-simulated-registry", "images.json")
# Fast settings, as kubesim's FAST_SETTINGS: instant pods, quick crash loops and terminations.
FAST_ARGS = [
    "--startup-delay=0s",
    "--crash-after=300ms",
    "--crash-backoff=300ms",
    "--pull-backoff=200ms",
    "--stop-delay=50ms",
    "--log-rate=20",
]


def selected() -> str:
    """The cluster the tests run against: `kubesim` (default) or `kubernetes`."""
    value = os.environ.get("APOLLO_TEST_CLUSTER", "kubesim") or "kubesim"
    if value not in {"kubesim", "kubernetes"}:
        raise RuntimeError(f"APOLLO_TEST_CLUSTER must be kubesim or kubernetes, got {value!r}")
    return value


class NotSimulated(AttributeError):
    """A kubesim control feature the real control plane does not have."""


@dataclass
class ControlPlaneHandle:
    url: str
    kubeconfig_path: Path
    token: str
    ca_cert_pem: str
    limited_token: str = ""

    def api_client(self, *, limited: bool = False) -> Any:
        from kubernetes import config

        if limited:
            raise NotSimulated(
                "the real control plane has no limited token; mark the test kubesim_only"
            )
        return config.new_client_from_config(
            config_file=str(self.kubeconfig_path), context="apollo"
        )

    def register_image(
        self,
        ref: str,
        behaviour: str = "ok",
        *,
        seconds: float = 0,
        exit_code: int = 1,
        has_bash: bool = True,
    ) -> dict[str, Any]:
        entry = {"behaviour": behaviour, "seconds": seconds, "exitCode": exit_code}
        self._change_registry(lambda images: images.__setitem__(ref, entry))
        return entry

    def mark_image_missing(self, ref: str) -> dict[str, Any]:
        return self.register_image(ref, "missing")

    def reset(self) -> None:
        self._change_registry(lambda images: images.clear())

    def _change_registry(self, change: Any) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        namespace, name, key = REGISTRY
        api = self.api_client()
        core = client.CoreV1Api(api)
        try:
            for _ in range(10):  # optimistic concurrency: retry on 409 Conflict
                try:
                    current = core.read_namespaced_config_map(name, namespace)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    current = None
                images = json.loads(((current and current.data) or {}).get(key) or "{}")
                change(images)
                body = {"metadata": {"name": name}, "data": {key: json.dumps(images)}}
                try:
                    if current is None:
                        core.create_namespaced_config_map(namespace, body)
                    else:
                        body["metadata"]["resourceVersion"] = current.metadata.resource_version
                        core.replace_namespaced_config_map(name, namespace, body)
                    return
                except ApiException as exc:
                    if exc.status != 409:
                        raise
            raise RuntimeError("the simulated registry kept changing under us")
        finally:
            api.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotSimulated(
            f"kubesim's {name!r} has no equivalent on the real control plane; "
            "mark the test @pytest.mark.kubesim_only"
        )


def _free_port(pair: bool = False) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if not pair:
            return port
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port + 1)) != 0:
                return port
    raise RuntimeError("no free port pair")


@contextlib.contextmanager
def run_control_plane(tmp_dir: Path) -> Iterator[ControlPlaneHandle]:
    if not BINARY.exists():
        raise RuntimeError(
            f"APOLLO_TEST_CLUSTER=kubernetes needs the control plane built at {BINARY}: "
            "run `cluster/build.sh` (or `make cluster`) first"
        )
    # Free ports are only probably free: another process may take one first (up exits then).
    for attempt in range(3):
        process, kubeconfig = _start(tmp_dir / f"try{attempt}")
        try:
            _wait_started(process, kubeconfig, tmp_dir / f"try{attempt}")
        except EarlyExit:
            if attempt == 2:
                raise
            continue
        except BaseException:
            _stop(process)
            raise
        try:
            yield _handle(kubeconfig)
        finally:
            _stop(process)
        return


class EarlyExit(RuntimeError):
    pass


def _start(tmp_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    tmp_dir.mkdir(parents=True)
    kubeconfig = tmp_dir / "kubernetes.kubeconfig"
    port, etcd_port = _free_port(), _free_port(pair=True)
    with (tmp_dir / "up.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(BINARY),
                "up",
                f"--dir={tmp_dir / 'state'}",
                f"--kubeconfig={kubeconfig}",
                f"--port={port}",
                f"--etcd-port={etcd_port}",
                "--namespace=default",
                *FAST_ARGS,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, kubeconfig


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_started(process: subprocess.Popen[bytes], kubeconfig: Path, tmp_dir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (tmp_dir / "up.log").read_text(errors="replace")[-3000:]
            raise EarlyExit(f"the control plane exited with {process.returncode}:\n{output}")
        if kubeconfig.exists():
            return
        time.sleep(0.2)
    raise RuntimeError(
        f"the control plane did not start within {START_TIMEOUT:.0f} s; see {tmp_dir}"
    )


def _handle(kubeconfig: Path) -> ControlPlaneHandle:
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    users = {user["name"]: user["user"] for user in config["users"]}
    return ControlPlaneHandle(
        url=cluster["server"],
        kubeconfig_path=kubeconfig,
        token=users["apollo"]["token"],
        limited_token=users["apollo-viewer"]["token"],
        ca_cert_pem=base64.b64decode(cluster["certificate-authority-data"]).decode(),
    )
