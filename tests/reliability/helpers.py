"""What the reliability tests share: a private kubesim (its outages hit no other test), worker
processes (`manage.py rundeployments` as in production; tests/workers.py), a TCP proxy in front
of PostgreSQL that a test can stop and start (a refused-connection window without touching the
shared server), and waits on conditions with generous deadlines."""

import contextlib
import signal
import socket
import threading
from typing import Any

import pytest
from django.db import connection

from deployments.models import Deployment
from tests.workers import WorkerProcess, database_url, until, worker_processes

__all__ = ["WorkerProcess", "database_url", "until", "worker_processes"]


on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL only: terminated backends and advisory locks (CI runs it there)",
)


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
