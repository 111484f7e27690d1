"""The worker under faults (kubesim's fault injection): every deployment ends in a terminal
state with a true reason, never stuck in STARTED, and its manifests are applied once."""

import threading
import time
from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone
from kubernetes import client

from deployments.engine import worker as worker_module
from deployments.engine.rollout import Follower, RolloutResult
from deployments.models import DeployableVersion, Deployment, Service
from deployments.status import Status
from environments import kube
from environments.models import Cluster, Environment
from kubesim.testing import ControlError, KubesimHandle
from tests import factories
from tests.kubeenv import deploy, wait_for, wait_until_terminal
from tests.kubesim.helpers import wait_for as until

pytestmark = pytest.mark.django_db(transaction=True)


class Worker:
    """One worker loop in a thread with its own owner and shutdown event (a process of its own)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.shutdown = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=owner)
        self.thread.start()

    def _run(self) -> None:
        try:
            worker_module.run_worker(shutdown=self.shutdown, poll_interval=0.05, owner=self.owner)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.shutdown.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), f"worker {self.owner} did not stop"


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.shutdown.set()
    for worker in started:
        worker.thread.join(timeout=30)


@pytest.fixture
def faults(kubesim: KubesimHandle) -> Iterator[KubesimHandle]:
    """The cluster with faults allowed; up and fault-free again before the namespace goes."""
    yield kubesim
    _wait_until_up(kubesim)
    kubesim.reset()


@pytest.fixture(autouse=True)
def _short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "APPLY_ATTEMPTS", 5)
    monkeypatch.setattr(worker_module, "UNREACHABLE_LIMIT", 2.0)
    monkeypatch.setattr(worker_module, "LEASE", timedelta(seconds=3))


def _wait_until_up(kubesim: KubesimHandle, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            kubesim.state()
            return
        except (OSError, ControlError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _target(
    kubesim: KubesimHandle, name: str, behaviour: str = "ok", seconds: float = 0
) -> tuple[Service, DeployableVersion]:
    service = factories.make_service(name, default_variables={"replicas": 2})
    version = factories.make_version(service)
    if behaviour != "ok":
        kubesim.register_image(version.image, behaviour, seconds=seconds)
    return service, version


def _applied(deployment: Deployment) -> list[str]:
    return [e["message"] for e in deployment.timeline if e["message"].startswith("applied ")]


def _generation(kubesim: KubesimHandle, name: str, namespace: str) -> int:
    api = kubesim.api_client()
    try:
        running = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
        return int(running.metadata.generation)
    finally:
        api.close()


def _assert_done(deployment: Deployment) -> None:
    assert deployment.status == Status.DONE, (deployment.status_reason, deployment.timeline[-8:])
    assert "rollout complete: 2/2 updated" in deployment.status_reason
    assert deployment.lease_owner == ""


# -- a slow, flaky API ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [4, 7, 8])  # seeds whose 5xx once hit the first read
@pytest.mark.kubesim_only
def test_a_rollout_ends_done_through_latency_and_server_errors(
    bob: User, staging: Environment, faults: KubesimHandle, workers: list[Worker], seed: int
) -> None:
    service, version = _target(faults, "flaky", "slow", seconds=1.5)
    faults.set_faults(latency_ms=200, error_rate=0.25, seed=seed)
    workers.append(Worker("worker-a"))
    outcome = deploy(bob, service, staging, version)
    deployment = wait_until_terminal(outcome.deployment, timeout=25)  # type: ignore[arg-type]
    _assert_done(deployment)
    assert len(_applied(deployment)) == 1


@pytest.mark.kubesim_only
def test_server_errors_on_every_first_call_do_not_fail_the_deployment(
    bob: User, staging: Environment, faults: KubesimHandle, workers: list[Worker]
) -> None:
    # Each of the next calls fails once: the apply, the first read of the Deployment, the lists.
    service, version = _target(faults, "unlucky")
    workers.append(Worker("worker-a"))
    faults.set_faults(fail_next=2)
    outcome = deploy(bob, service, staging, version)
    wait_for(outcome.deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
    faults.set_faults(fail_next=3)
    deployment = wait_until_terminal(outcome.deployment, timeout=15)  # type: ignore[arg-type]
    _assert_done(deployment)


@pytest.mark.kubesim_only
def test_dropped_connections_do_not_fail_the_deployment(
    bob: User, staging: Environment, faults: KubesimHandle, workers: list[Worker]
) -> None:
    service, version = _target(faults, "dropped", "slow", seconds=1)
    faults.set_faults(drop_rate=0.2, seed=11)
    workers.append(Worker("worker-a"))
    outcome = deploy(bob, service, staging, version)
    deployment = wait_until_terminal(outcome.deployment, timeout=25)  # type: ignore[arg-type]
    _assert_done(deployment)


@pytest.mark.kubesim_only
def test_watches_ended_mid_rollout_are_resumed_and_the_rollout_ends_done(
    bob: User, staging: Environment, faults: KubesimHandle, workers: list[Worker]
) -> None:
    service, version = _target(faults, "rewatch", "slow", seconds=2.5)
    workers.append(Worker("worker-a"))
    outcome = deploy(bob, service, staging, version)
    wait_for(outcome.deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
    # End the follower's watches, then again once it has opened them again: it resumes them.
    ended = until(faults.end_watches, timeout=10, what="the follower's watches")
    ended += until(faults.end_watches, timeout=10, what="the follower's watches, resumed")
    assert ended >= 2
    deployment = wait_until_terminal(outcome.deployment, timeout=15)  # type: ignore[arg-type]
    _assert_done(deployment)


# -- a worker that dies ------------------------------------------------------------------------


def test_a_worker_stopped_mid_rollout_hands_over_and_the_next_one_resumes_without_reapplying(
    bob: User, staging: Environment, kubesim: KubesimHandle, workers: list[Worker]
) -> None:
    service, version = _target(kubesim, "handover", "slow", seconds=4)
    first = Worker("worker-a")
    workers.append(first)
    outcome = deploy(bob, service, staging, version)
    applied = wait_for(outcome.deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
    generation = _generation(kubesim, "handover", staging.namespace)
    first.stop()
    applied.refresh_from_db()
    assert applied.status == Status.STARTED
    assert applied.lease_expires_at is not None
    assert applied.lease_expires_at <= timezone.now()  # handed over, not left to expire
    workers.append(Worker("worker-b"))
    deployment = wait_until_terminal(applied, timeout=15)
    _assert_done(deployment)
    messages = [e["message"] for e in deployment.timeline]
    assert any("resumed by another worker" in m for m in messages)
    assert len(_applied(deployment)) == 1
    assert deployment.applied_at == applied.applied_at
    assert _generation(kubesim, "handover", staging.namespace) == generation


def test_a_worker_that_dies_holding_its_lease_is_resumed_once_the_lease_expires(
    bob: User, staging: Environment, kubesim: KubesimHandle, workers: list[Worker]
) -> None:
    service, version = _target(kubesim, "orphan", "slow", seconds=4)
    first = Worker("worker-a")
    workers.append(first)
    outcome = deploy(bob, service, staging, version)
    applied = wait_for(outcome.deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
    first.stop()
    # What a killed process leaves behind: its lease, still running for a while.
    expires = timezone.now() + timedelta(seconds=1.5)
    Deployment.objects.filter(pk=applied.pk).update(
        lease_owner="worker-a", lease_expires_at=expires
    )
    workers.append(Worker("worker-b"))
    # Not taken while the lease is alive: every read made before it expired shows worker-a
    # (a read is before the expiry if the clock, read after it, is still before).
    while True:
        applied.refresh_from_db()
        if timezone.now() >= expires:
            break
        assert applied.lease_owner == "worker-a"
        time.sleep(0.05)
    deployment = wait_for(applied, lambda d: d.lease_owner == "worker-b", timeout=5)
    assert timezone.now() >= expires
    deployment = wait_until_terminal(deployment, timeout=15)
    _assert_done(deployment)
    assert any("resumed by another worker" in e["message"] for e in deployment.timeline)
    assert len(_applied(deployment)) == 1


def test_a_worker_never_claims_again_a_deployment_it_is_following(
    bob: User,
    staging: Environment,
    kubesim: KubesimHandle,
    workers: list[Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A lease shorter than the follower's check interval lapses while the worker follows; its
    # own loop must not take the deployment a second time and follow it twice.
    monkeypatch.setattr(worker_module, "LEASE", timedelta(seconds=0.2))
    service, version = _target(kubesim, "twice", "slow", seconds=2)
    workers.append(Worker("worker-a"))
    outcome = deploy(bob, service, staging, version)
    deployment = wait_until_terminal(outcome.deployment, timeout=15)  # type: ignore[arg-type]
    _assert_done(deployment)
    assert not any("resumed" in e["message"] for e in deployment.timeline)
    assert len(_applied(deployment)) == 1


# -- the cluster goes away ---------------------------------------------------------------------


@pytest.mark.kubesim_only
def test_a_cluster_down_longer_than_the_limit_is_judged_when_it_answers_again(
    bob: User, staging: Environment, faults: KubesimHandle, workers: list[Worker]
) -> None:
    # Not FAILED at the unreachable limit: the cluster went on with the rollout meanwhile.
    service, version = _target(faults, "outage", "slow", seconds=5)
    workers.append(Worker("worker-a"))
    outcome = deploy(bob, service, staging, version)
    wait_for(outcome.deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
    faults.down(7)
    deployment = wait_until_terminal(outcome.deployment, timeout=30)  # type: ignore[arg-type]
    assert deployment.status == Status.DONE, deployment.status_reason
    assert "rollout had completed: rollout complete: 2/2 updated" in deployment.status_reason
    assert deployment.status_reason.startswith("cluster unreachable for ")
    assert deployment.lease_owner == ""


@pytest.mark.kubesim_only
def test_a_cluster_down_at_apply_time_fails_after_bounded_retries(
    bob: User,
    staging: Environment,
    faults: KubesimHandle,
    workers: list[Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "APPLY_ATTEMPTS", 3)
    service, version = _target(faults, "nobody")
    faults.down(6)
    workers.append(Worker("worker-a"))
    started = time.monotonic()
    outcome = deploy(bob, service, staging, version)
    deployment = wait_until_terminal(outcome.deployment, timeout=10)  # type: ignore[arg-type]
    assert time.monotonic() - started < 6  # bounded: it did not wait for the cluster
    assert deployment.status == Status.FAILED
    assert "unreachable after 3 attempts" in deployment.status_reason
    attempts = [e for e in deployment.timeline if "apply attempt" in e["message"]]
    assert len(attempts) == 3
    assert deployment.applied_at is None


@pytest.mark.kubesim_only
def test_a_brief_outage_shorter_than_the_limit_still_ends_done(
    bob: User,
    staging: Environment,
    faults: KubesimHandle,
    workers: list[Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "UNREACHABLE_LIMIT", 6.0)
    service, version = _target(faults, "blip", "slow", seconds=3)
    workers.append(Worker("worker-a"))
    outcome = deploy(bob, service, staging, version)
    wait_for(outcome.deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
    faults.down(1.5)
    deployment = wait_until_terminal(outcome.deployment, timeout=15)  # type: ignore[arg-type]
    _assert_done(deployment)
    messages = [e["message"] for e in deployment.timeline]
    assert any("cluster unreachable, retrying" in m for m in messages)
    assert "cluster reachable again" in messages


@pytest.mark.kubesim_only
def test_a_cluster_down_when_the_worker_resumes_is_judged_when_it_answers_again(
    bob: User, staging: Environment, faults: KubesimHandle, workers: list[Worker]
) -> None:
    # The resuming worker's first call (reading the Deployment) meets the outage.
    service, version = _target(faults, "resume-down", "slow", seconds=5)
    first = Worker("worker-a")
    workers.append(first)
    outcome = deploy(bob, service, staging, version)
    wait_for(outcome.deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
    first.stop()
    faults.down(7)
    workers.append(Worker("worker-b"))
    deployment = wait_until_terminal(outcome.deployment, timeout=30)  # type: ignore[arg-type]
    assert deployment.status == Status.DONE, deployment.status_reason
    assert "rollout had completed" in deployment.status_reason
    assert "internal error" not in deployment.status_reason


# -- deadlines and quiet outages (no cluster needed) -----------------------------------------


class _CapturedFollower:
    """Stands in for Follower: records how it was built and reports a finished rollout."""

    built: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.built.append(kwargs)

    def follow(self, **_kwargs: Any) -> Generator[list[tuple[str, str]], Any, RolloutResult]:
        yield []
        return RolloutResult("done", "rollout complete")

    def take_notes(self) -> list[tuple[str, str]]:
        return []

    def close(self, **_kwargs: Any) -> list[tuple[str, str]]:
        return []


def _remaining_seconds(
    alice: User,
    monkeypatch: pytest.MonkeyPatch,
    *,
    cancelling: bool,
    elapsed: float,
    watched: float = 0.0,
) -> float:
    monkeypatch.setattr(worker_module, "Follower", _CapturedFollower)
    _CapturedFollower.built.clear()
    service = factories.make_service()
    environment = factories.make_environment(rollout_timeout_seconds=30)
    deployment = factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=alice,
        status=Status.STARTED,
        started_at=timezone.now() - timedelta(seconds=elapsed),
        watched_seconds=watched,
    )
    run = worker_module.Run(deployment, "me", threading.Event())
    documents = [{"kind": "Deployment", "metadata": {"name": service.name}}]
    run.follow(documents, deployment.version.git_commit_sha, cancelling=cancelling)
    return float(_CapturedFollower.built[0]["deadline"]) - time.monotonic()


def test_a_resumed_rollout_keeps_the_time_it_was_watched_before(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    remaining = _remaining_seconds(alice, monkeypatch, cancelling=False, elapsed=60, watched=25)
    assert 3 < remaining <= 5


def test_a_resumed_rollout_is_not_charged_the_time_nobody_watched(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started an hour ago, watched 5 s, then no worker: 25 s of its 30 s are left.
    remaining = _remaining_seconds(alice, monkeypatch, cancelling=False, elapsed=3600, watched=5)
    assert 23 < remaining <= 25


def test_a_rollback_late_in_the_rollout_gets_the_whole_timeout(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cancelled 28 s into a 30 s rollout: the rollback must not inherit the 2 s left.
    assert 28 < _remaining_seconds(alice, monkeypatch, cancelling=True, elapsed=28) <= 30


def test_a_cluster_that_stops_answering_fails_the_rollout_at_its_deadline_as_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first list is refused, then every call hangs (a blackholed API server): no event
    # reaches the follower any more; the limit is noted, and the deadline ends it as unknown
    # (the watchers are stuck: only the follower's own clock can end it).
    hang = threading.Event()
    calls: list[str] = []

    def list_objects(*_args: Any, **_kwargs: Any) -> tuple[list[Any], str]:
        calls.append("list")
        if len(calls) <= 2:
            raise kube.ClusterUnreachable("connection refused")
        hang.wait(30)
        raise kube.ClusterUnreachable("timed out")

    deployment = {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"a": "b"}}}}
    monkeypatch.setattr(kube, "read_deployment", lambda *_a, **_k: deployment)
    monkeypatch.setattr(kube, "list_objects", list_objects)
    notes: list[tuple[str, str]] = []
    follower = Follower(
        cluster=Cluster(name="blackhole"),
        namespace="ns",
        name="web",
        sha="a" * 40,
        deadline=time.monotonic() + 3,
        timeout_seconds=3,
        unreachable_limit=1.0,
    )
    started = time.monotonic()
    steps = follower.follow()
    try:
        while True:  # what the worker does: record what the rollout yields, never stop it
            notes += steps.send(None)
    except StopIteration as verdict:
        result = verdict.value
    finally:
        hang.set()
    notes += follower.take_notes()
    assert result.state == "failed"
    assert "its outcome is unknown" in result.reason
    assert time.monotonic() - started < 8
    assert any("unreachable for more than 1 s" in message for _, message in notes)
    assert ("cluster", "cluster unreachable, retrying: connection refused") in notes


@pytest.mark.kubesim_only
def test_a_worker_stopped_while_retrying_the_apply_hands_over_and_the_next_one_applies(
    bob: User, staging: Environment, faults: KubesimHandle, workers: list[Worker]
) -> None:
    service, version = _target(faults, "retrying")
    faults.down(2.5)
    first = Worker("worker-a")
    workers.append(first)
    outcome = deploy(bob, service, staging, version)
    wait_for(
        outcome.deployment,  # type: ignore[arg-type]
        lambda d: any("apply attempt 1/" in e["message"] for e in d.timeline),
    )
    first.stop()
    stopped = wait_for(outcome.deployment, lambda d: True)  # type: ignore[arg-type]
    # Not FAILED for an outage it did not wait out: handed over, still to be applied.
    assert stopped.status == Status.STARTED, stopped.status_reason
    assert stopped.applied_at is None
    _wait_until_up(faults)
    workers.append(Worker("worker-b"))
    deployment = wait_until_terminal(stopped, timeout=15)
    _assert_done(deployment)
    assert len(_applied(deployment)) == 1


@pytest.mark.kubesim_only
def test_the_followers_watches_end_with_the_verdict_even_when_the_server_is_quiet(
    bob: User, staging: Environment, kubesim: KubesimHandle, workers: list[Worker]
) -> None:
    # A real API server sends a bookmark about once a minute: a watcher that only looks at its
    # stop flag between events would keep its thread and connection long after DONE.
    service, version = _target(kubesim, "quiet")
    with kubesim.settings(bookmark_interval=60):
        workers.append(Worker("worker-a"))
        deployment = wait_until_terminal(deploy(bob, service, staging, version).deployment)  # type: ignore[arg-type]
        _assert_done(deployment)
        # The Events still on their way are recorded for up to a second after the verdict;
        # then the watches close, long before the 60 s a quiet server takes to say anything.
        deadline = time.monotonic() + 5
        while _watch_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _watch_threads() == []


def _watch_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("watch-") and t.is_alive()]


def test_a_crash_loop_keeps_its_reason_when_its_logs_cannot_be_read(
    bob: User,
    staging: Environment,
    kubesim: KubesimHandle,
    workers: list[Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(*_args: Any, **_kwargs: Any) -> list[str]:
        raise kube.ClusterUnreachable("API server answered 503 Service Unavailable")

    monkeypatch.setattr(kube, "pod_log_tail", unreachable)
    service, version = _target(kubesim, "crash-nologs", "crashloop", seconds=0.05)
    workers.append(Worker("worker-a"))
    outcome = deploy(bob, service, staging, version)
    deployment = wait_until_terminal(outcome.deployment, timeout=20)  # type: ignore[arg-type]
    assert deployment.status == Status.FAILED
    assert "crash-looping" in deployment.status_reason
    assert any("could not be read" in e["message"] for e in deployment.timeline)
