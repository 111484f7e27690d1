"""Issue #15 part 2: SIGTERM to a worker finishes or hands over its rollouts within the grace
period, and its leases are released (not left to expire).

`manage.py rundeployments --grace N` as in production: after SIGTERM it claims nothing more,
lets its rollouts finish for up to N s, then hands the rest over and exits 0.
"""

import signal
import time

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests.kubeenv import deploy, wait_for, wait_until_terminal
from tests.reliability.conftest import target
from tests.reliability.helpers import WorkerProcess, applies_sent, worker_processes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kubesim_only]


def test_sigterm_lets_a_rollout_finish_within_the_grace_period(
    bob: User, env: Environment, sim: KubesimHandle
) -> None:
    service, version = target(sim, "graceful", "slow", seconds=2)
    with worker_processes(1, grace=30) as [worker]:
        deployment = deploy(bob, service, env, version).deployment
        wait_for(deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
        signalled = time.monotonic()
        assert worker.stop(signal.SIGTERM, timeout=40) == 0
        assert time.monotonic() - signalled < 30
        deployment.refresh_from_db()  # type: ignore[union-attr]
        assert deployment.status == Status.DONE, deployment.status_reason  # type: ignore[union-attr]
        worker.wait_for_line("deployment worker stopped", timeout=5)


def test_sigterm_hands_a_long_rollout_over_when_the_grace_period_ends(
    bob: User, env: Environment, sim: KubesimHandle
) -> None:
    service, version = target(sim, "handover", "slow", seconds=8)
    with worker_processes(1, grace=1) as [worker]:
        deployment = deploy(bob, service, env, version).deployment
        applied = wait_for(deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
        assert worker.stop(signal.SIGTERM, timeout=30) == 0
        applied.refresh_from_db()
        assert applied.status == Status.STARTED
        assert applied.lease_expires_at is not None
        assert applied.lease_expires_at <= timezone.now()  # released, not left to expire
    successor = WorkerProcess()
    try:
        done = wait_until_terminal(applied, timeout=40)
    finally:
        successor.stop(signal.SIGTERM)
    assert done.status == Status.DONE, done.status_reason
    assert len(applies_sent(done)) == 1
