"""`manage.py rundeployments` as the process it is in production: started, signalled, stopped.

The command runs in a subprocess on the test database (signal handlers need a main thread),
so these tests also prove that the worker needs nothing from the web process.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.utils import timezone

from deployments.engine import worker as worker_module
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy, wait_for, wait_until_terminal

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    """The test database (not the configured one) as a DATABASE_URL for the subprocess."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


class Command:
    """`manage.py rundeployments` in a subprocess, its output read line by line."""

    def __init__(self) -> None:
        env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rundeployments",
                "--poll-interval",
                "0.1",
                "--grace",
                "0",
            ],
            cwd=ROOT,
            env=env,
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

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@pytest.fixture
def command() -> Iterator[Command]:
    started = Command()
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait(timeout=10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_worker_starts_and_stops_cleanly_on_a_signal(
    command: Command, sig: signal.Signals
) -> None:
    started = command.wait_for_line("started")
    assert started.startswith("deployment worker ")
    assert command.stop(sig) == 0
    command.wait_for_line("deployment worker stopped", timeout=5)
    assert not any("Traceback" in line for line in command.output)


def test_sigterm_during_a_rollout_hands_the_deployment_over_to_the_next_worker(
    command: Command, bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    service = factories.make_service("handed-over", default_variables={"replicas": 2})
    version = factories.make_version(service)
    kubesim.register_image(version.image, "slow", seconds=4)
    command.wait_for_line("started")
    outcome = deploy(bob, service, staging, version)
    try:
        applied = wait_for(outcome.deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
    except AssertionError as exc:
        # Say what the worker process printed: the deployment alone does not tell why.
        while not command.lines.empty():
            command.output.append(command.lines.get())
        raise AssertionError(f"{exc}\nworker output: {command.output}") from None
    assert command.stop(signal.SIGTERM) == 0
    command.wait_for_line("deployment worker stopped", timeout=5)
    applied.refresh_from_db()
    # Not stuck: still STARTED, but with its lease released at once (not after 30 s).
    assert applied.status == Status.STARTED
    assert applied.lease_expires_at is not None
    assert applied.lease_expires_at <= timezone.now()

    shutdown = threading.Event()

    def next_worker() -> None:
        try:
            worker_module.run_worker(shutdown=shutdown, poll_interval=0.05, owner="next")
        finally:
            connections.close_all()

    thread = threading.Thread(target=next_worker, daemon=True)
    thread.start()
    try:
        deployment = wait_until_terminal(applied, timeout=20)
    finally:
        shutdown.set()
        thread.join(timeout=30)
    assert deployment.status == Status.DONE, deployment.status_reason
    messages = [entry["message"] for entry in deployment.timeline]
    assert any("resumed by another worker" in m for m in messages)
    assert len([m for m in messages if m.startswith("applied ")]) == 1
