"""What the reliability tests share: a private kubesim (its outages hit no other test), worker
processes (`manage.py rundeployments` as in production), a TCP proxy in front of PostgreSQL
that a test can stop and start (a refused-connection window without touching the shared
server), and waits on conditions with generous deadlines."""

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from django.db import connection

from deployments.models import Deployment

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL only: terminated backends and advisory locks (CI runs it there)",
)


def until(check: Callable[[], T], *, timeout: float = 30, what: str = "the condition") -> T:
    """check()'s first truthy answer, polled until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def database_url(*, port: int | None = None) -> str:
    """The test database as a DATABASE_URL for a worker process (through `port` if given)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "localhost"
    return f"postgres://{credentials}@{host}:{port or db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    """`manage.py rundeployments` in a subprocess; its output kept for the failure message."""

    def __init__(self, *, url: str | None = None, grace: float = 0, **env: str) -> None:
        environment = {
            **os.environ,
            "DATABASE_URL": url or database_url(),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rundeployments",
                "--poll-interval",
                "0.1",
                "--grace",
                str(grace),
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def drain(self) -> list[str]:
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return self.output

    def wait_for_line(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}; output so far: {self.output}")

    @property
    def name(self) -> str:
        """The worker's owner name, from its first line."""
        line = next((x for x in self.output if x.startswith("deployment worker ")), "")
        return line.removeprefix("deployment worker ").split(" ")[0]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        if self.alive():
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@contextlib.contextmanager
def worker_processes(count: int, **kwargs: Any) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(**kwargs) for _ in range(count)]
    try:
        for worker in started:
            worker.wait_for_line("started")
        yield started
    finally:
        for worker in started:
            if worker.alive():
                worker.process.kill()
                worker.process.wait(timeout=10)


class TcpProxy:
    """A TCP proxy on a fixed local port to `upstream`: stop() closes every connection and
    refuses new ones (as a database server that went away), start() listens again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def applies_sent(deployment: Deployment) -> list[str]:
    """The applies the timeline says were sent for the Deployment object (one per attempt)."""
    return [
        e["message"]
        for e in deployment.timeline
        if e["message"].startswith("sending apply of Deployment/")
    ]


def deployment_generation(api: Any, name: str, namespace: str) -> int:
    from kubernetes import client

    running = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    return int(running.metadata.generation)


def alive_after(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        assert worker.alive(), f"worker exited {worker.process.returncode}: {worker.drain()}"


def kill(worker: WorkerProcess) -> None:
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=10)
