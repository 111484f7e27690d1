"""On PostgreSQL a new deployment wakes an idle worker at once (LISTEN/NOTIFY)."""

import threading
import time

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections

from deployments.engine import worker as worker_module
from deployments.engine.wakeup import WorkSignal, notify_new_work
from environments.models import Environment
from tests import factories
from tests.kubeenv import deploy, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
POSTGRESQL = connection.vendor == "postgresql"


@pytest.mark.skipif(not POSTGRESQL, reason="LISTEN/NOTIFY is PostgreSQL's (CI runs it there)")
def test_a_new_deployment_is_claimed_long_before_the_next_poll(
    bob: User, staging: Environment
) -> None:
    shutdown, idle = threading.Event(), threading.Event()

    def idle_worker() -> None:
        try:
            worker_module.run_worker(
                shutdown=shutdown, poll_interval=60, owner="listener", on_idle=idle.set
            )
        finally:
            connections.close_all()

    thread = threading.Thread(target=idle_worker, daemon=True)
    thread.start()
    try:
        # The worker has looked once, found nothing, and now waits up to 60 s.
        assert idle.wait(timeout=10)
        service = factories.make_service("awake")
        outcome = deploy(bob, service, staging, factories.make_version(service))
        assert outcome.deployment is not None
        # Claimed (and maybe finished already) within seconds, not after the 60 s poll.
        wait_for(outcome.deployment, lambda d: d.started_at is not None, timeout=10)
    finally:
        shutdown.set()
        thread.join(timeout=30)


def test_a_shutdown_ends_the_wait_at_once() -> None:
    notify_new_work()  # nobody listening: never an error
    shutdown = threading.Event()
    with WorkSignal(shutdown) as work:
        assert work.listener is not None  # every database has a wake-up now (wakeup.py)
        shutdown.set()
        started = time.monotonic()
        work.wait(30)
        assert time.monotonic() - started < 5  # a shutdown ends the wait
