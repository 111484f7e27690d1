"""On PostgreSQL a following rollout holds no database connection of its own (#16): the worker's
following thread reads and writes for every rollout, so a worker following many rollouts holds
a handful of the server's connections, not one per rollout. Counted in the test's own database
(pg_stat_activity), against the same count before the worker started."""

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.models import Deployment
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy
from tests.workers import WorkerThread, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kubesim_only]
ROLLOUTS = 8
# The worker's own: its claims, heartbeat, advisory locks, following thread and wake-up (5
# measured, 2 to spare; one per rollout would be 13).
WORKER_OWN = 7


def _connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def test_a_worker_following_many_rollouts_holds_no_connection_per_rollout(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("connections are a server's slots on PostgreSQL only (CI runs it there)")
    before = _connections()
    targets = []
    for index in range(ROLLOUTS):
        service = factories.make_service(f"slow-{index}", default_variables={"replicas": 1})
        version = factories.make_version(service)
        kubesim.register_image(version.image, "slow", seconds=120)  # following throughout
        targets.append((service, version))
    worker = WorkerThread("worker-a")
    try:
        pks = []
        for service, version in targets:
            outcome = deploy(bob, service, staging, version)
            assert outcome.deployment is not None
            pks.append(outcome.deployment.pk)
        applied = Deployment.objects.filter(pk__in=pks, applied_at__isnull=False)
        until(lambda: applied.count() == ROLLOUTS)
        # (Each thread gives its connection back as its rollout begins following.)
        until(
            lambda: _connections() - before <= WORKER_OWN,
            what="at most the worker's own connections",
        )
        statuses = Deployment.objects.filter(pk__in=pks).values_list("status", flat=True)
        assert set(statuses) == {Status.STARTED}  # all still following
    finally:
        worker.stop()  # (they are handed over)
