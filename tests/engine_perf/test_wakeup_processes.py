"""Worker processes are woken by a new deployment, on every database (issue #16): PostgreSQL
through LISTEN/NOTIFY, otherwise through Redis when there is one, otherwise through a local
socket. The workers poll only every 60 s here, so a claim within seconds is the wake-up's."""

import contextlib
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from deployments.engine import wakeup
from deployments.models import Deployment, Service
from environments.models import Environment
from tests import factories
from tests.kubeenv import wait_for, wait_until_terminal
from tests.workers import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)
POSTGRESQL = connection.vendor == "postgresql"
POLL_SECONDS = 60  # longer than any wait below: only a wake-up explains a claim


@contextlib.contextmanager
def workers(count: int, transport: str, **env: str) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(poll_interval=POLL_SECONDS, env=env) for _ in range(count)]
    try:
        for worker in started:
            # Listening (and, right after, its first look found nothing): from now on only a
            # wake-up or the 60 s poll makes it look again.
            worker.wait_for_line(f"woken through {transport}")
        yield started
    finally:
        for worker in started:
            try:
                worker.stop()
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(timeout=10)


@pytest.fixture
def redis_url(settings: Any) -> Iterator[str]:
    """A redis-server of this test's own, set as REDIS_URL of this process."""
    import redis

    with contextlib.closing(__import__("socket").socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            assert time.monotonic() < deadline, "redis-server did not answer within 30 s"
            time.sleep(0.05)
    client.close()
    settings.APOLLO_REDIS_URL = url
    settings.APOLLO_REDIS_PREFIX = f"wakeup-{uuid.uuid4().hex[:8]}"
    try:
        yield url
    finally:
        server.kill()
        server.wait(timeout=30)


def _request(user: User, service: Service, environment: Environment) -> Deployment:
    version = factories.make_version(service)
    body = {
        "service": service.name,
        "environment": environment.name,
        "git_commit_sha": version.git_commit_sha,
    }
    api = Client(headers={"Authorization": f"Token {factories.token_for(user)}"})
    response = api.post("/api/v1/deployments/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    return Deployment.objects.get(pk=response.json()["id"])


def _claimed_within_seconds(bob: User, staging: Environment, names: list[str]) -> None:
    for name in names:
        deployment = _request(bob, factories.make_service(name), staging)
        # Far sooner than the 60 s poll (the deadline is generous for a loaded machine).
        wait_for(deployment, lambda d: d.started_at is not None, timeout=20)
        assert wait_until_terminal(deployment).status == "DONE"


@pytest.mark.skipif(POSTGRESQL, reason="on PostgreSQL, NOTIFY wakes the workers (test below)")
def test_two_worker_processes_on_sqlite_are_woken_through_a_local_socket(
    bob: User, staging: Environment
) -> None:
    assert wakeup.transport() == "local"
    with workers(2, "local", REDIS_URL=""):
        _claimed_within_seconds(bob, staging, ["woken-a", "woken-b", "woken-c"])


@pytest.mark.skipif(POSTGRESQL, reason="on PostgreSQL, NOTIFY wakes the workers (test below)")
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_two_worker_processes_with_redis_are_woken_through_it(
    bob: User, staging: Environment, redis_url: str, settings: Any
) -> None:
    assert wakeup.transport() == "redis"
    env = {"REDIS_URL": redis_url, "APOLLO_REDIS_PREFIX": settings.APOLLO_REDIS_PREFIX}
    with workers(2, "redis", **env):
        _claimed_within_seconds(bob, staging, ["redis-a", "redis-b"])


@pytest.mark.skipif(not POSTGRESQL, reason="LISTEN/NOTIFY is PostgreSQL's (CI runs it there)")
def test_two_worker_processes_on_postgresql_are_woken_through_notify(
    bob: User, staging: Environment
) -> None:
    with workers(2, "postgresql"):
        _claimed_within_seconds(bob, staging, ["notified-a", "notified-b"])


def test_a_wake_up_with_nobody_listening_or_a_dead_listener_is_harmless(
    settings: Any, tmp_path: Path
) -> None:
    settings.VAR_DIR = tmp_path
    if not POSTGRESQL:
        settings.APOLLO_REDIS_URL = None
    wakeup.notify_new_work()  # no directory yet: nothing to wake, no error
    stale = tmp_path / "wakeup" / "0123456789abcdef.sock"
    stale.parent.mkdir()
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dead:
        dead.bind(str(stale))  # a worker that died without removing its socket
    shutdown = threading.Event()
    with wakeup.WorkSignal(shutdown) as work:
        wakeup.notify_new_work()
        assert work.wait(30)  # woken, not after 30 s
        assert not work.wait(0.1)  # one wake-up wakes once
    if not POSTGRESQL:
        assert not stale.exists()  # the dead worker's file is gone
        assert list((tmp_path / "wakeup").iterdir()) == []  # and the live one's after close
