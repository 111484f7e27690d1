"""Point 1 of issue #17: workers survive a lost or refused database connection.

Real worker processes on PostgreSQL: their backends are terminated (pg_terminate_backend), or
their database disappears behind a TCP proxy the test stops for a while (a refused connection,
without stopping the shared server). They stay alive and the deployments they hold end DONE,
applied once. Before the fix one terminated backend made every worker exit 1.
"""

import time

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests.kubeenv import deploy, wait_for, wait_until_terminal
from tests.reliability.conftest import target
from tests.reliability.helpers import (
    TcpProxy,
    alive_after,
    applies_sent,
    database_url,
    on_postgresql,
    until,
    worker_processes,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kubesim_only, on_postgresql]


# The workers' sessions, named so that only they are terminated. Every other session once was,
# the test process's own included: a thread of it that kept its connection (asgiref's, which
# runs an async test's database calls) met "terminating connection due to administrator
# command" in a later test (tests/reliability/test_redis_idle_sockets.py, run after this file).
WORKERS_APPLICATION = "apollo-outage-test-worker"


def _terminate_worker_backends() -> int:
    """The workers' sessions on the test database, as an operator's pg_terminate_backend."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [WORKERS_APPLICATION],
        )
        return int(cursor.fetchone()[0])


def test_workers_survive_terminated_backends_and_finish_their_rollouts(
    bob: User, env: Environment, sim: KubesimHandle
) -> None:
    services = [target(sim, f"pgkill-{i}", "slow", seconds=4) for i in range(2)]
    url = f"{database_url()}?application_name={WORKERS_APPLICATION}"
    with worker_processes(2, url=url) as workers:
        idle = [w.name for w in workers]
        deployments = [deploy(bob, s, env, v).deployment for s, v in services]
        for d in deployments:
            wait_for(d, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
        assert _terminate_worker_backends() >= 2
        time.sleep(0.5)  # let the workers meet the dead connections (any time works)
        assert _terminate_worker_backends() >= 0  # and once more, mid-reconnect
        done = [wait_until_terminal(d, timeout=40) for d in deployments]  # type: ignore[arg-type]
        alive_after(workers)
        for d in done:
            assert d.status == Status.DONE, (d.status_reason, d.timeline[-6:])
            assert len(applies_sent(d)) == 1
        # Idle workers too: both still beat and claim a new deployment.
        service, version = target(sim, "pgkill-after")
        later = wait_until_terminal(deploy(bob, service, env, version).deployment)  # type: ignore[arg-type]
        assert later.status == Status.DONE, later.status_reason
        alive_after(workers)
        assert idle == [w.name for w in workers]


def test_workers_survive_a_refused_database_and_carry_on_when_it_is_back(
    bob: User, env: Environment, sim: KubesimHandle
) -> None:
    settings = connection.settings_dict
    proxy = TcpProxy((settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432)))
    proxy.start()
    try:
        with worker_processes(2, url=database_url(port=proxy.port)) as workers:
            service, version = target(sim, "pgdown", "slow", seconds=4)
            deployment = deploy(bob, service, env, version).deployment
            wait_for(deployment, lambda d: d.applied_at is not None)  # type: ignore[arg-type]
            proxy.stop()  # every connection cut, new ones refused
            try:
                # The rollout goes on in the cluster meanwhile; the workers wait it out.
                until(
                    lambda: any(
                        "database unavailable" in line for w in workers for line in w.drain()
                    ),
                    what="a worker noticing the outage",
                )
                time.sleep(3)  # the outage lasts a while (its length is not asserted)
                alive_after(workers)
            finally:
                proxy.start()
            done = wait_until_terminal(deployment, timeout=40)  # type: ignore[arg-type]
            alive_after(workers)
            assert done.status == Status.DONE, (done.status_reason, done.timeline[-6:])
            assert len(applies_sent(done)) == 1
            output = [line for w in workers for line in w.drain()]
            # Logged once per worker, not once per query and thread.
            for w in workers:
                assert sum("database unavailable" in line for line in w.output) <= 1, w.output
            assert any("database reachable again" in line for line in output)
    finally:
        proxy.stop()
