"""Point 6 of issue #17: applied exactly once, and resumed quickly.

The lease is renewed by the worker's heartbeat thread, whatever its Kubernetes calls wait for
(before: by the rollout between calls, so one slow call let it lapse and a second worker
applied again); every Kubernetes call times out well under the lease; on PostgreSQL the
advisory lock of a killed worker is freed by the server, so another worker resumes its
deployment within 5 s (before: when the lease expired, 23 to 30 s); the timeline records every
apply sent.
"""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone

from deployments.engine import worker as worker_module
from deployments.models import Deployment
from deployments.status import Status
from environments import kube
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests.kubeenv import deploy, wait_for, wait_until_terminal
from tests.reliability.conftest import target
from tests.reliability.helpers import (
    applies_sent,
    deployment_generation,
    kill,
    on_postgresql,
    until,
    worker_processes,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kubesim_only]


@pytest.fixture
def thread_workers() -> Iterator[list[threading.Event]]:
    stops: list[threading.Event] = []
    threads: list[threading.Thread] = []

    def start(owner: str) -> None:
        stop = threading.Event()

        def run() -> None:
            try:
                worker_module.run_worker(shutdown=stop, poll_interval=0.05, owner=owner)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, daemon=True, name=owner)
        thread.start()
        stops.append(stop)
        threads.append(thread)

    yield start  # type: ignore[misc]
    for stop in stops:
        stop.set()
    for thread in threads:
        thread.join(timeout=30)


def test_every_kubernetes_call_times_out_well_under_the_lease() -> None:
    connect, read = kube.TIMEOUT
    assert connect + read <= settings.APOLLO_WORKER_LEASE_SECONDS / 2


def test_slow_kubernetes_calls_do_not_let_the_lease_lapse(
    bob: User,
    env: Environment,
    sim: KubesimHandle,
    thread_workers: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each call takes longer than the whole lease: only a heartbeat keeps it.
    monkeypatch.setattr(worker_module, "LEASE", timedelta(seconds=1))
    service, version = target(sim, "slowcalls")
    sim.set_faults(latency_ms=1500)
    start = thread_workers
    start("worker-a")  # type: ignore[operator]
    deployment = deploy(bob, service, env, version).deployment
    wait_for(deployment, lambda d: d.lease_owner == "worker-a")  # type: ignore[arg-type]
    start("worker-b")  # type: ignore[operator]
    done = wait_until_terminal(deployment, timeout=60)  # type: ignore[arg-type]
    assert done.status == Status.DONE, (done.status_reason, done.timeline[-6:])
    messages = [e["message"] for e in done.timeline]
    assert not any("resumed" in m for m in messages)
    assert len(applies_sent(done)) == 1


@on_postgresql
def test_a_worker_killed_mid_rollout_is_resumed_within_five_seconds_without_a_second_apply(
    bob: User, env: Environment, sim: KubesimHandle
) -> None:
    service, version = target(sim, "killed", "slow", seconds=6)
    with worker_processes(2) as workers:
        deployment = deploy(bob, service, env, version).deployment
        applied = wait_for(deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
        api = sim.api_client()
        try:
            generation = deployment_generation(api, "killed", env.namespace)
            [owner] = [w for w in workers if w.name == applied.lease_owner]
            [other] = [w for w in workers if w is not owner]
            kill(owner)  # kill -9: no handover, the lease still runs for 30 s
            killed = time.monotonic()
            until(
                lambda: Deployment.objects.filter(pk=applied.pk, lease_owner=other.name).exists(),
                timeout=30,
                what="the other worker taking the deployment over",
            )
            resumed_after = time.monotonic() - killed
            done = wait_until_terminal(applied, timeout=40)
            assert done.status == Status.DONE, done.status_reason
            assert resumed_after < 5, resumed_after
            assert len(applies_sent(done)) == 1
            assert any("resumed by another worker" in e["message"] for e in done.timeline)
            assert deployment_generation(api, "killed", env.namespace) == generation
        finally:
            api.close()


@on_postgresql
def test_a_live_workers_lock_is_never_taken_even_past_its_lease(
    bob: User, env: Environment, sim: KubesimHandle
) -> None:
    # The lease looks expired (as after a long database outage of its worker), but the worker
    # lives and holds the lock: no other worker drives it a second time.
    service, version = target(sim, "held", "slow", seconds=3)
    with worker_processes(1) as [owner]:
        deployment = deploy(bob, service, env, version).deployment
        applied = wait_for(deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
        assert applied.lease_owner == owner.name
        with worker_processes(1) as [other]:
            Deployment.objects.filter(pk=applied.pk).update(lease_expires_at=applied.created_at)
            done = wait_until_terminal(applied, timeout=40)
            assert done.status == Status.DONE, done.status_reason
            assert not any(other.name in line for line in other.drain() if "driven by" in line)
            assert len(applies_sent(done)) == 1


def test_an_apply_sent_by_a_worker_killed_before_recording_it_is_not_sent_again(
    bob: User, env: Environment, sim: KubesimHandle, thread_workers: object
) -> None:
    # What a worker killed between sending the apply and recording it leaves behind: the
    # timeline's "sending apply" entry, the objects applied, applied_at unset, its lease.
    from deployments.manifests import recorded_checked

    service, version = target(sim, "halfway")
    deployment = deploy(bob, service, env, version).deployment
    assert deployment is not None
    sha = version.git_commit_sha
    documents = recorded_checked(deployment=deployment, sha=sha)
    kube.apply(env.cluster, env.namespace, documents)
    api = sim.api_client()
    try:
        generation = deployment_generation(api, "halfway", env.namespace)
    finally:
        api.close()
    sent = {
        "at": timezone.now().isoformat(),
        "source": "worker",
        "message": f"sending apply of Deployment/halfway ({sha[:12]}) from dead:1:abc",
    }
    Deployment.objects.filter(pk=deployment.pk).update(
        status=Status.STARTED,
        started_at=timezone.now(),
        lease_owner="dead:1:abc",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        timeline=[sent],
    )
    thread_workers("worker-b")  # type: ignore[operator]
    done = wait_until_terminal(deployment, timeout=40)
    assert done.status == Status.DONE, done.status_reason
    assert applies_sent(done) == [sent["message"]]
    assert any("had gone through; not sent again" in e["message"] for e in done.timeline)
    api = sim.api_client()
    try:
        assert deployment_generation(api, "halfway", env.namespace) == generation
    finally:
        api.close()
