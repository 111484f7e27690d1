"""`manage.py rundeployments` as the process it is in production: started, signalled, stopped
(tests/workers.py runs it in a subprocess on the test database, so these tests also prove that
the worker needs nothing from the web process)."""

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone

from deployments.engine import worker as worker_module
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy, wait_for, wait_until_terminal
from tests.workers import WorkerProcess, WorkerThread

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def command() -> Iterator[WorkerProcess]:
    started = WorkerProcess()
    yield started
    if started.alive():
        started.process.kill()
        started.process.wait(timeout=10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_worker_starts_and_stops_cleanly_on_a_signal(
    command: WorkerProcess, sig: signal.Signals
) -> None:
    started = command.wait_for_line("started")
    assert started.startswith("deployment worker ")
    assert command.stop(sig) == 0
    command.wait_for_line("deployment worker stopped", timeout=5)
    assert not any("Traceback" in line for line in command.output)


def test_a_fatal_error_is_reported_by_faulthandler(command: WorkerProcess) -> None:
    """faulthandler is on: a worker killed by a fatal error (SIGABRT here, as an abort at
    exit or a crash in a C extension would) says so, then dumps its threads' stacks, rather
    than leave a bare exit status. Only the report's first line is certain: faulthandler
    reads the other threads' frames while they run, and that dump may itself crash the
    process (SIGSEGV, once in 50 runs of this file here), as its documentation warns."""
    command.wait_for_line("waiting for work")  # in its claim loop
    stopped = command.stop(signal.SIGABRT)
    assert stopped in (-signal.SIGABRT, -signal.SIGSEGV), stopped
    # (faulthandler writes the header in two writes to fd 2: a log line could fall between)
    output = "\n".join(command.finished_output())
    assert "Fatal Python error: " in output, output
    assert "Aborted" in output, output


def test_sigterm_during_a_rollout_hands_the_deployment_over_to_the_next_worker(
    command: WorkerProcess, bob: User, staging: Environment, kubesim: KubesimHandle
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
        raise AssertionError(f"{exc}\nworker output: {command.drain()}") from None
    stopped = command.stop(signal.SIGTERM)
    assert stopped == 0, f"exit {stopped}; worker output: {command.finished_output()}"
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


def test_a_worker_that_ends_leaves_no_watch_of_its_rollouts_reading_from_the_cluster(
    bob: User, staging: Environment, kubesim: KubesimHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_worker returns once the watches its rollouts left open for a next rollout are
    closed and their threads have ended: a thread still in OpenSSL while the process exits
    made a worker sent SIGTERM abort (SIGABRT) in 3 of 57 runs of this file here (2026-12)."""
    from deployments.engine import namespace_watch

    follow_from = namespace_watch.NamespaceWatch.follow_from

    def slow_to_end(watch: namespace_watch.NamespaceWatch[Any], version: str) -> None:
        follow_from(watch, version)
        time.sleep(0.5)  # still at work a while after its stream was closed

    monkeypatch.setattr(namespace_watch.NamespaceWatch, "follow_from", slow_to_end)
    service = factories.make_service("watched", default_variables={"replicas": 1})
    version = factories.make_version(service)
    started = WorkerThread("ending")
    try:
        outcome = deploy(bob, service, staging, version)
        deployment = wait_until_terminal(outcome.deployment)  # type: ignore[arg-type]
        assert deployment.status == Status.DONE, deployment.status_reason
        # Its watches: lingering for a next rollout in the namespace (LINGER_SECONDS).
        with namespace_watch._open_lock:
            watches = [w for w in namespace_watch._open if w.namespace == staging.namespace]
        assert watches
        assert all(w.is_alive() for w in watches)
    finally:
        started.stop()
    assert not started.thread.is_alive()
    assert [w.name for w in watches if w.is_alive()] == []
