"""`APOLLO_CLUSTER=kubernetes make run`: the demo on the real control plane, started by rundemo
from var/bin/apollo-kubernetes, and stopped with everything else on Ctrl-C.

Runs with APOLLO_TEST_CLUSTER=kubernetes (cluster/ci.sh); skipped on kubesim."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster import control_plane
from tests.environments.test_rundemo import ROOT, _free_port, _log_in, _wait_for_line

pytestmark = pytest.mark.skipif(
    control_plane.selected() != "kubernetes", reason="needs APOLLO_TEST_CLUSTER=kubernetes"
)


def test_rundemo_serves_the_demo_on_the_real_control_plane_and_stops_it(tmp_path: Path) -> None:
    port, kube_port = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
        "APOLLO_VAR_DIR": str(tmp_path),
        "APOLLO_PORT": str(port),
        "APOLLO_CLUSTER": "kubernetes",
        "APOLLO_KUBERNETES_PORT": str(kube_port),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rundemo"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    seen: list[str] = []
    kubeconfig = tmp_path / "kubernetes.kubeconfig"
    try:
        credentials = _wait_for_line(process, r"Demo admin: username 'alice'", seen)
        password = re.search(r"password '([^']+)'", credentials)
        assert password
        _wait_for_line(process, r"Listening on TCP address", seen)
        assert "<h1>Environments</h1>" in _log_in(
            f"http://127.0.0.1:{port}", "alice", password.group(1)
        )
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
        kubectl = subprocess.run(
            [
                str(control_plane.BINARY.parent / "kubectl"),
                "--kubeconfig",
                str(kubeconfig),
                "get",
                "ns,nodes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert re.search(r"^namespace/staging\s+Active", kubectl.stdout, re.M)
        assert re.search(r"^node/apollo-node-1\s+Ready", kubectl.stdout, re.M)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the group
        process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while _answers(kube_port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _answers(kube_port), "the control plane still listens"


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
