"""`python -m kubesim` starts, writes a kubeconfig, serves, and stops cleanly on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_line_server(tmp_path: Path, signum: int) -> None:
    kubeconfig = tmp_path / "kubesim.kubeconfig"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubesim",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--startup-delay",
            "0",
            "--namespace",
            "staging",
            "--namespace",
            "production",
            "--limited-token",
            "viewer-token",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        assert ready.startswith("kubesim ready on https://127.0.0.1:")
        loaded = yaml.safe_load(kubeconfig.read_text())
        assert loaded["contexts"][0]["context"]["namespace"] == "staging"
        assert loaded["clusters"][0]["cluster"]["certificate-authority-data"]
        assert {u["user"]["token"] for u in loaded["users"]} >= {"viewer-token"}
        assert kubeconfig.stat().st_mode & 0o077 == 0
        api = config.new_client_from_config(config_file=str(kubeconfig))
        names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
        assert {"default", "staging", "production", "kube-system"} <= names
        api.close()
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert "kubesim stopping" in out
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "kubesim",
                "--port",
                str(port),
                "--kubeconfig",
                str(tmp_path / "k"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    assert result.returncode == 1
    assert "Address already in use" in result.stderr
