"""`make run`'s command end to end: kubesim, seed, worker and web server, then Ctrl-C."""

import contextlib
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.kubesim.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_line(process: subprocess.Popen[str], pattern: str, seen: list[str]) -> str:
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                raise AssertionError("rundemo exited early:\n" + "".join(seen))
            continue
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(seen))


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _log_in(base: str, username: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (http to our own test server)
        f"{base}/login/", data=body, headers={"Referer": base}
    )
    return str(opener.open(request, timeout=10).read().decode())


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
@pytest.mark.parametrize(
    "stop", ["ctrl-c", "sigterm"], ids=["ctrl-c to the group", "sigterm to rundemo alone"]
)
def test_rundemo_serves_the_demo_on_kubesim_and_stops_everything_it_started(
    tmp_path: Path, stop: str
) -> None:
    port, kube_port = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
        "APOLLO_VAR_DIR": str(tmp_path),
        "APOLLO_PORT": str(port),
        "APOLLO_KUBESIM_PORT": str(kube_port),
        "APOLLO_KUBECONFIG": str(tmp_path / "kubesim.kubeconfig"),
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
    try:
        credentials = _wait_for_line(process, r"Demo admin: username 'alice'", seen)
        password = re.search(r"password '([^']+)'", credentials)
        assert password
        _wait_for_line(process, r"Listening on TCP address", seen)
        home = _log_in(f"http://127.0.0.1:{port}", "alice", password.group(1))
        assert "<h1>Environments</h1>" in home
        assert "production" in home
        kubectl = subprocess.run(
            ["kubectl", "--kubeconfig", str(tmp_path / "kubesim.kubeconfig"), "get", "ns"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert re.search(r"^staging\s+Active", kubectl.stdout, re.M)
        assert re.search(r"^production\s+Active", kubectl.stdout, re.M)
    finally:
        if stop == "ctrl-c":
            # Ctrl-C in a terminal signals the whole foreground process group.
            os.killpg(process.pid, signal.SIGINT)
        else:
            # A service manager or `kill` signals rundemo only: it must stop its children.
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    wait_for(lambda: not _listening(port) and not _listening(kube_port), what="ports closed")
    # Every process rundemo started (kubesim, worker, daphne) was in its process group.
    try:
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # leave nothing behind if the test fails
