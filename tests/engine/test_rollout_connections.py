"""On SQLite a worker's rollout thread keeps its database connection for its next rollout
(#16): opened again for each rollout, it made the rollout's first write, the timeline entry
before the first apply, wait 3.9 ms (Django's SQL functions registered and the journal mode
set again). Counted with Django's connection_created signal in one rollout thread driving
three rollouts one after the other. (On PostgreSQL the thread gives its connection back to
the worker's pool instead: tests/engine/test_worker_pool.py.)"""

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.db.backends.signals import connection_created

from deployments.engine.worker import claim, drive_deployment
from deployments.models import Deployment
from deployments.status import Status
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import deploy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kubesim_only]
ROLLOUTS = 3


def test_a_rollout_thread_opens_its_sqlite_connection_once(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's connections are kept; PostgreSQL's go back to the worker's pool")
    opened: list[str] = []

    def count(sender: Any, **kwargs: Any) -> None:
        opened.append(threading.current_thread().name)

    connection_created.connect(count)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout") as thread:
            for index in range(ROLLOUTS):
                service = factories.make_service(f"web-{index}")
                outcome = deploy(bob, service, staging, factories.make_version(service))
                assert outcome.deployment is not None
                claimed = claim("test-worker")
                assert claimed is not None
                assert claimed.pk == outcome.deployment.pk
                driven = thread.submit(drive_deployment, claimed, "test-worker", threading.Event())
                driven.result(timeout=60)
                assert Deployment.objects.get(pk=claimed.pk).status == Status.DONE
            thread.submit(connections.close_all).result()
    finally:
        connection_created.disconnect(count)
    assert [name for name in opened if name.startswith("rollout")] == ["rollout_0"]
