"""Concurrent deploy requests: the database decides which one proceeds.

Meaningful on PostgreSQL (CI runs the suite again with DATABASE_URL pointing at it), where the
threads' transactions really overlap; on SQLite they serialise on the write lock.
"""

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import connections

from deployments.models import DeployableVersion, Deployment, Service
from deployments.services.deploy import DeployOutcome, request_deployment
from deployments.status import Status
from environments.models import Environment
from history.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
REQUESTS = 50


def _at_once(calls: list[Callable[[], DeployOutcome]]) -> list[DeployOutcome | BaseException]:
    """Run every call in its own thread, released together; each thread closes its connection."""
    barrier = threading.Barrier(len(calls))
    results: list[DeployOutcome | BaseException] = []
    lock = threading.Lock()

    def run(call: Callable[[], DeployOutcome]) -> None:
        try:
            barrier.wait(timeout=30)
            result: DeployOutcome | BaseException = call()
        except BaseException as exc:  # reported by the test, not lost in the thread
            result = exc
        finally:
            connections.close_all()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == len(calls), "a request thread did not finish"
    return results


def _request(
    user: User, service: Service, environment: Environment, version: DeployableVersion
) -> Callable[[], DeployOutcome]:
    return lambda: request_deployment(
        user=user, service=service, environment=environment, version=version, message="race"
    )


def _kinds(results: list[DeployOutcome | BaseException]) -> Counter[str]:
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"requests raised: {errors[:3]}"
    return Counter(r.kind for r in results if isinstance(r, DeployOutcome))


def test_of_fifty_concurrent_requests_for_one_target_exactly_one_proceeds(bob: User) -> None:
    service = factories.make_service("race")
    staging = factories.make_environment("staging")
    version = factories.make_version(service)
    results = _at_once([_request(bob, service, staging, version)] * REQUESTS)
    assert _kinds(results) == {"created": 1, "in_progress": REQUESTS - 1}
    refused = next(r for r in results if isinstance(r, DeployOutcome) and r.kind != "created")
    assert refused.reason == "a deployment of race in staging is already in progress"
    assert refused.deployment is None
    created = next(r for r in results if isinstance(r, DeployOutcome) and r.kind == "created")
    rows = Deployment.objects.filter(service=service, environment=staging)
    assert list(rows.values_list("pk", "status")) == [(created.deployment.pk, Status.PENDING)]  # type: ignore[union-attr]
    # The losers' audit events were rolled back with their rows.
    assert AuditEvent.objects.filter(action="deployment.requested").count() == 1


def test_concurrent_requests_for_different_environments_all_proceed(bob: User) -> None:
    service = factories.make_service("spread")
    version = factories.make_version(service)
    environments = [factories.make_environment(f"staging-{i}") for i in range(10)]
    results = _at_once([_request(bob, service, env, version) for env in environments])
    assert _kinds(results) == {"created": 10}
    assert Deployment.objects.filter(status=Status.PENDING).count() == 10


def test_once_the_winner_has_finished_the_next_request_proceeds(bob: User) -> None:
    service = factories.make_service("again")
    staging = factories.make_environment("staging")
    version = factories.make_version(service)
    results = _at_once([_request(bob, service, staging, version)] * 10)
    assert _kinds(results)["created"] == 1
    winner = Deployment.objects.get(service=service)
    winner.transition_to(Status.STARTED)
    winner.transition_to(Status.DONE, reason="rollout complete")
    again = _at_once([_request(bob, service, staging, version)] * 10)
    assert _kinds(again) == {"created": 1, "in_progress": 9}
