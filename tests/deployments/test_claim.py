"""Claiming deployments: two workers never start the same one; expired leases are resumed."""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone

from deployments.engine.worker import claim
from deployments.models import Deployment
from deployments.status import Status
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def _deployment(user: User, **extra: Any) -> Deployment:
    service = factories.make_service()
    extra.setdefault("status", "PENDING")
    return factories.make_deployment(
        service=service, environment=factories.make_environment(), deployed_by=user, **extra
    )


def test_of_eight_racing_workers_exactly_one_claims_a_pending_deployment(alice: User) -> None:
    pending = _deployment(alice)
    barrier = threading.Barrier(8)
    claimed: list[Deployment | None] = []

    def race(owner: str) -> None:
        try:
            barrier.wait()
            claimed.append(claim(owner))
        finally:
            connections.close_all()  # each thread opened its own connection

    threads = [threading.Thread(target=race, args=(f"worker-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [c for c in claimed if c is not None]
    assert len(winners) == 1
    pending.refresh_from_db()
    assert pending.status == Status.STARTED
    assert pending.lease_owner == winners[0].lease_owner
    assert pending.started_at is not None


def test_a_deployment_whose_lease_is_alive_is_not_claimed(alice: User) -> None:
    _deployment(
        alice,
        status=Status.STARTED,
        lease_owner="other",
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )
    assert claim("me") is None


def test_a_deployment_whose_lease_expired_is_resumed_as_it_was(alice: User) -> None:
    stale = _deployment(
        alice,
        status=Status.STARTED,
        lease_owner="dead-worker",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        applied_at=timezone.now(),
    )
    resumed = claim("me")
    assert resumed is not None
    assert resumed.pk == stale.pk
    assert resumed.status == Status.STARTED
    assert resumed.lease_owner == "me"
    assert resumed.applied_at is not None


def test_finished_deployments_are_never_claimed(alice: User) -> None:
    for status in (Status.DONE, Status.FAILED, Status.CANCELED):
        _deployment(alice, status=status)
    assert claim("me") is None


def test_the_claimed_deployment_comes_with_its_cluster_read(
    alice: User, django_assert_num_queries: Any
) -> None:
    _deployment(alice)
    claimed = claim("me")
    assert claimed is not None
    # The worker's first owner checks need the cluster: no query between claim and them.
    with django_assert_num_queries(0):
        assert claimed.environment.cluster.name
        assert claimed.version.git_commit_sha
        assert claimed.service.name
