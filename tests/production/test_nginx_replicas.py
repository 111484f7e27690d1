"""Several replicas behind a real reverse proxy (issue #15, part 2).

nginx (Debian's package, with deploy/nginx/apollo.conf) terminates TLS in front of two daphne
processes, and two `rundeployments` workers run beside them, all on PostgreSQL and Redis:

- a log-in and its session work whichever replica answers (the CSRF token of one replica's form
  is accepted by the other), Django sees https through X-Forwarded-Proto, a foreign origin is
  refused (forms and websockets);
- websockets pass through nginx;
- while a deployment rolls out, the web process holding the deployment page's socket and the
  worker holding the deployment are SIGKILLed: the page reconnects through the other web
  process and follows the deployment to DONE, the other worker finishes it, and its manifests
  were applied once;
- SIGTERM to daphne closes an open socket with 4503 (Apollo is restarting), which pages
  reconnect on.
"""

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection

from deployments.models import Deployment
from deployments.status import Status
from environments.models import Environment
from kubesim import tls
from kubesim.testing import KubesimHandle
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "nginx" / "apollo.conf"
HOST = "localhost"
ASGI = "apollo_site.asgi:application"
PASSWORD = "a long enough test password"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("nginx") is None, reason="needs Debian's nginx package"),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.APOLLO_REDIS_URL,
        reason="several processes share PostgreSQL and Redis (CI's PostgreSQL + Redis pass)",
    ),
]


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports (probed while all are held, so none is handed out twice)."""
    with contextlib.ExitStack() as held:
        probes = [held.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def _until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _holds_a_connection(pid: int, port: int) -> bool:
    """Whether process `pid` holds an established TCP connection on its local `port` (from
    /proc: the sockets among its file descriptors)."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and fields[9] in inodes and local_port == port:
                return True
    return False


@dataclass
class Stack:
    """nginx on `url`, two web processes (port -> process) and two workers (pid -> process)."""

    url: str
    ca_file: Path
    access_log: Path
    webs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        session.verify = str(self.ca_file)
        return session

    def socket(self, path: str, cookies: dict[str, Any], origin: str | None = None) -> Any:
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        return websocket.create_connection(
            self.url.replace("https://", "wss://") + path,
            sslopt={"ca_certs": str(self.ca_file)},
            origin=origin or self.url,
            cookie=cookie,
            timeout=30,
        )

    def upstreams_of(self, marker: str) -> set[str]:
        lines = self.access_log.read_text().splitlines()
        return {
            m.group(1) for line in lines if marker in line for m in [_UPSTREAM.search(line)] if m
        }


_UPSTREAM = re.compile(r"upstream=(\S+)")


def _environment(tmp: Path, nginx_port: int) -> dict[str, str]:
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return {
        **os.environ,
        "DATABASE_URL": f"{database_url}/{db['NAME']}",
        "REDIS_URL": str(settings.APOLLO_REDIS_URL),
        "APOLLO_REDIS_PREFIX": str(settings.APOLLO_REDIS_PREFIX),
        "DEBUG": "0",
        # The test's own key: the cluster's token was encrypted with the key derived from it.
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}:{nginx_port}",
        "APOLLO_TRUST_X_FORWARDED_PROTO": "1",
        "APOLLO_PROXY_COUNT": "1",
        "APOLLO_VAR_DIR": str(tmp / "var"),
        "PYTHONUNBUFFERED": "1",
    }


def _nginx_conf(tmp: Path, port: int, web_ports: list[int], http_port: int) -> Path:
    certificates = tls.generate((HOST, "127.0.0.1"))
    (tmp / "apollo.crt").write_bytes(certificates.cert_pem + certificates.ca_pem)
    (tmp / "apollo.key").write_bytes(certificates.key_pem)
    (tmp / "ca.crt").write_bytes(certificates.ca_pem)
    site = EXAMPLE.read_text()
    for old, new in [
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("server_name apollo.example.com;", f"server_name {HOST};"),
        ("/etc/nginx/tls/apollo.crt", str(tmp / "apollo.crt")),
        ("/etc/nginx/tls/apollo.key", str(tmp / "apollo.key")),
        ("/var/log/nginx/apollo.access.log", str(tmp / "access.log")),
        ("server 127.0.0.1:8001 ", f"server 127.0.0.1:{web_ports[0]} "),
        ("server 127.0.0.1:8002 ", f"server 127.0.0.1:{web_ports[1]} "),
    ]:
        assert old in site, f"{old!r} is no longer in {EXAMPLE}"
        site = site.replace(old, new)
    (tmp / "apollo.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    main = tmp / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\ndaemon off;\npid {tmp}/nginx.pid;\n"
        + f"error_log {tmp}/error.log info;\nevents {{}}\n"
        + f"http {{\n{temp}\n    uwsgi_temp_path {tmp}/uwsgi;\n    scgi_temp_path {tmp}/scgi;\n"
        + f"    include {tmp}/apollo.conf;\n}}\n"
    )
    return main


@pytest.fixture
def stack(tmp_path: Path, staging: Environment) -> Iterator[Stack]:
    (tmp_path / "var").mkdir(mode=0o700)
    port, web_a, web_b, http_port = _free_ports(4)
    web_ports = [web_a, web_b]
    env = _environment(tmp_path, port)
    main = _nginx_conf(tmp_path, port, web_ports, http_port)
    result = Stack(f"https://{HOST}:{port}", tmp_path / "ca.crt", tmp_path / "access.log")
    processes: list[subprocess.Popen[bytes]] = []
    nginx: subprocess.Popen[bytes] | None = None

    def start(name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        processes.append(process)
        return process

    # DEBUG off: the pages link hashed static files, collected as an image build does.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    try:
        for web_port in web_ports:
            result.webs[web_port] = start(
                f"web-{web_port}",
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port), ASGI],
            )
        for n in range(2):
            worker = start(f"worker-{n}", [sys.executable, "manage.py", "rundeployments"])
            result.workers[worker.pid] = worker
        nginx = start("nginx", ["nginx", "-c", str(main), "-p", str(tmp_path)])
        for web_port in web_ports:
            health = f"http://127.0.0.1:{web_port}/healthz"
            _until(functools.partial(_answers, health), "daphne", 90)
        _until(lambda: (tmp_path / "nginx.pid").exists(), "nginx started")
        yield result
    finally:
        for process in processes:
            if process.poll() is not None:
                continue
            # nginx's master stops its workers on SIGTERM (a SIGKILL would orphan them).
            if process is nginx:
                process.terminate()
            else:
                process.kill()
        for process in processes:
            process.wait(timeout=30)
        for name in ("error.log", *(f"web-{p}.log" for p in web_ports)):
            path = tmp_path / name
            if path.exists():
                sys.stderr.write(f"--- {name}\n{path.read_text()[-3000:]}\n")


def _log_in(stack: Stack, user: User) -> requests.Session:
    session = stack.session()
    form = session.get(f"{stack.url}/login/", timeout=30)
    assert form.status_code == 200, form.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token
    answer = session.post(
        f"{stack.url}/login/",
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": user.username,
            "password": PASSWORD,
        },
        headers={"Referer": f"{stack.url}/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text[-2000:]
    return session


def _with_password(user: User, settings: Any) -> User:
    # The replicas hash with the production hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user.set_password(PASSWORD)
    user.save()
    return user


def test_sessions_csrf_https_and_websockets_work_across_replicas_behind_nginx(
    bob: User, staging: Environment, stack: Stack, settings: Any
) -> None:
    session = _log_in(stack, _with_password(bob, settings))
    # Secure cookies: Django saw https (X-Forwarded-Proto from nginx, SECURE_PROXY_SSL_HEADER).
    assert all(cookie.secure for cookie in session.cookies)
    marker = f"probe-{time.monotonic_ns()}"
    for _ in range(6):
        page = session.get(f"{stack.url}/?{marker}", timeout=30)
        assert page.status_code == 200
        assert "Log out" in page.text
    # The session of one replica is the session of the other.
    assert len(stack.upstreams_of(marker)) == 2
    # A form posted from another origin is refused, whichever replica answers.
    forged = session.post(
        f"{stack.url}/logout/",
        data={"csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
        headers={"Origin": "https://evil.example", "Referer": "https://evil.example/"},
        timeout=30,
    )
    assert forged.status_code == 403
    # Websockets pass through nginx; a foreign origin is refused at the handshake.
    service = factories.make_service("proxied")
    deployment = factories.make_deployment(
        service=service, environment=staging, deployed_by=bob, status="PENDING"
    )
    path = f"/ws/deployments/{deployment.pk}/"
    live = stack.socket(path, session.cookies.get_dict())
    first = json.loads(live.recv())
    assert (first["type"], first["id"]) == ("deployment.status", deployment.pk)
    live.close()
    with pytest.raises(websocket.WebSocketBadStatusException):
        stack.socket(path, session.cookies.get_dict(), origin="https://evil.example")


class Page:
    """The deployment page's socket as live.js drives it: reconnect when it closes; every
    (re)connect starts with the deployment's status read from the database."""

    def __init__(self, stack: Stack, path: str, cookies: dict[str, Any]) -> None:
        self.stack, self.path, self.cookies = stack, path, cookies
        self.statuses: list[str] = []
        self.reconnects = 0
        self.socket = self._connect()

    def _connect(self) -> Any:
        deadline = time.monotonic() + 60
        while True:
            try:
                return self.stack.socket(self.path, self.cookies)
            except (OSError, websocket.WebSocketException):
                assert time.monotonic() < deadline, "the page could not reconnect in 60 s"
                time.sleep(0.5)  # live.js backs off too

    def follow_until(self, status: str, timeout: float) -> None:
        """Until the page shows `status` (or another final one: then it says which)."""
        deadline = time.monotonic() + timeout
        while not self.statuses or self.statuses[-1] != status:
            assert time.monotonic() < deadline, f"page saw {self.statuses}"
            if self.statuses and Status(self.statuses[-1]).is_terminal:
                break
            try:
                message = json.loads(self.socket.recv())
            except (OSError, websocket.WebSocketException, ssl.SSLError):
                self.reconnects += 1
                self.socket = self._connect()
                continue
            if message.get("type") == "deployment.status":
                self.statuses.append(message["status"])


def _slow_target(kubesim: KubesimHandle) -> tuple[Any, Any]:
    service = factories.make_service("failover", default_variables={"replicas": 2})
    version = factories.make_version(service)
    kubesim.register_image(version.image, "slow", seconds=8)
    return service, version


def test_a_rollout_survives_a_killed_web_process_and_worker_and_sigterm_closes_with_4503(
    bob: User, staging: Environment, kubesim: KubesimHandle, stack: Stack, settings: Any
) -> None:
    # The surviving worker takes over once the killed one's lease has expired; the verdict is
    # the rollout's, not a deadline that ran while nobody watched.
    staging.rollout_timeout_seconds = 300
    staging.save()
    session = _log_in(stack, _with_password(bob, settings))
    service, version = _slow_target(kubesim)
    api = stack.session()
    api.headers["Authorization"] = f"Token {factories.token_for(bob)}"
    created = api.post(
        f"{stack.url}/api/v1/deployments/",
        json={
            "service": service.name,
            "environment": staging.name,
            "git_commit_sha": version.git_commit_sha,
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    deployment = Deployment.objects.get(pk=created.json()["id"])

    def applied() -> Deployment | None:
        deployment.refresh_from_db()
        return deployment if deployment.applied_at and deployment.lease_owner else None

    _until(applied, "the manifests applied by a worker", 60)
    page = Page(stack, f"/ws/deployments/{deployment.pk}/", session.cookies.get_dict())
    page.follow_until(Status.STARTED, timeout=30)

    # SIGKILL the web process holding the page's socket, and the worker holding the deployment.
    def holder() -> int | None:
        # Only the page's socket stays open (nginx keeps no idle upstream connections); a
        # request that has just ended may linger a moment, so wait until one process holds one.
        holding = [p for p, w in stack.webs.items() if _holds_a_connection(w.pid, p)]
        return holding[0] if len(holding) == 1 else None

    stack.webs[_until(holder, "the web process holding the socket")].kill()
    owner_pid = int(deployment.lease_owner.split(":")[1])
    assert owner_pid in stack.workers, deployment.lease_owner
    stack.workers[owner_pid].kill()

    page.follow_until(Status.DONE, timeout=120)
    assert page.statuses[-1] == Status.DONE, page.statuses
    assert page.reconnects >= 1
    deployment.refresh_from_db()
    assert deployment.status == Status.DONE, deployment.status_reason
    applies = [e for e in deployment.timeline if e["message"].startswith("applied ")]
    assert len(applies) == 1, deployment.timeline
    assert deployment.lease_owner == ""

    # SIGTERM to the remaining web process: an open socket is closed with 4503.
    [(port, survivor)] = [(p, w) for p, w in stack.webs.items() if w.poll() is None]
    live = stack.socket(f"/ws/deployments/{deployment.pk}/", session.cookies.get_dict())
    json.loads(live.recv())
    _until(lambda: _holds_a_connection(survivor.pid, port), "the socket on the survivor")
    survivor.send_signal(signal.SIGTERM)
    opcode, data = live.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == 4503
    survivor.wait(timeout=30)
