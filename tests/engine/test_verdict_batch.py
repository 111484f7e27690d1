"""Verdicts waiting at the same moment are committed in one transaction (#16, verdicts.py):
each with its own guard (a deployment that moved meanwhile keeps its status and the others
commit), its outbox rows once, and a lone verdict written at once by its own thread."""

import threading
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.engine import verdicts
from deployments.models import Deployment, InvalidTransition
from deployments.notifications.models import Delivery, Event, Subscription
from deployments.notifications.services import save_subscription
from deployments.status import Status
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 30.0


def _verdicts(deployments: list[Deployment]) -> list[verdicts.Verdict]:
    return [
        verdicts.Verdict(d, Status.DONE, "rollout complete", {"environment_snapshot": {"n": d.pk}})
        for d in deployments
    ]


def _transactions(count: int, alice: User) -> tuple[int, int]:
    batch = _verdicts(factories.make_started_deployments(alice, count))
    with CaptureQueriesContext(connection) as queries:
        verdicts.write_batch(batch, shutdown=threading.Event())
    begins = [q for q in queries if q["sql"].upper().startswith("BEGIN")]
    assert all(v.error is None and v.written and v.batch == count for v in batch)
    return len(begins), len(queries)


def test_a_batch_of_verdicts_is_one_transaction_whatever_its_size(alice: User) -> None:
    begins_5, queries_5 = _transactions(5, alice)
    begins_10, queries_10 = _transactions(10, alice)
    assert begins_5 == begins_10 == 1
    assert queries_10 - queries_5 == (queries_5 - 1) // 5 * 5  # the same statements per verdict
    assert set(Deployment.objects.values_list("status", flat=True)) == {Status.DONE}


@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="SQLite's one writer only: PostgreSQL writes each verdict on its own connection",
)
def test_verdicts_waiting_while_another_is_written_are_committed_together(alice: User) -> None:
    deployments = factories.make_started_deployments(alice, 4)
    done: list[verdicts.Verdict] = []
    errors: list[BaseException] = []

    def judge(d: Deployment) -> None:
        try:
            done.append(
                verdicts.commit(
                    d, Status.DONE, reason="rollout complete", also={}, shutdown=threading.Event()
                )
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=judge, args=(d,)) for d in deployments]
    with verdicts.busy() as held:  # a verdict of another rollout being written
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + WAIT
        while held.waiting() < len(deployments):
            assert time.monotonic() < deadline, "the verdicts did not queue"
            time.sleep(0.01)
    for thread in threads:
        thread.join(WAIT)
    assert errors == []
    assert [v.batch for v in done] == [4, 4, 4, 4]
    assert set(Deployment.objects.values_list("status", flat=True)) == {Status.DONE}


def test_a_lone_verdict_is_written_at_once_by_its_own_thread(alice: User) -> None:
    (deployment,) = factories.make_started_deployments(alice, 1)
    with CaptureQueriesContext(connection) as queries:  # (this thread's connection)
        verdict = verdicts.commit(
            deployment, Status.FAILED, reason="crash loop", also={}, shutdown=threading.Event()
        )
    assert verdict.batch == 1
    statements = [q["sql"].split(" ", 1)[0].upper() for q in queries]
    assert statements.count("UPDATE") == 1
    assert statements.count("BEGIN") == 1
    assert "SAVEPOINT" not in statements  # the statements of a verdict before batches
    deployment.refresh_from_db()
    assert deployment.status == Status.FAILED
    assert deployment.status_reason == "crash loop"


def test_a_deployment_cancelled_meanwhile_keeps_its_status_and_the_others_commit_once(
    alice: User, settings: Any
) -> None:
    deployments = factories.make_started_deployments(alice, 3)
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    save_subscription(
        actor=alice,
        subscription=Subscription(name="hook", kind=Subscription.Kind.SLACK),
        url="http://127.0.0.1:9/hook",
    )
    cancelled = deployments[1]
    Deployment(pk=cancelled.pk, status=Status.STARTED).transition_to(
        Status.PENDING_CANCELLATION, reason="bob cancelled"
    )
    batch = _verdicts(deployments)
    verdicts.write_batch(batch, shutdown=threading.Event())
    assert isinstance(batch[1].error, InvalidTransition)
    assert batch[0].error is None
    assert batch[2].error is None
    statuses = dict(
        Deployment.objects.filter(pk__in=[d.pk for d in deployments]).values_list("pk", "status")
    )
    assert statuses == {
        deployments[0].pk: Status.DONE,
        cancelled.pk: Status.PENDING_CANCELLATION,
        deployments[2].pk: Status.DONE,
    }
    assert Deployment.objects.get(pk=cancelled.pk).environment_snapshot in (None, {})
    done_events = Delivery.objects.filter(
        deployment_id__in=[d.pk for d in deployments], event=Event.DONE
    )
    assert sorted(done_events.values_list("deployment_id", flat=True)) == sorted(
        [deployments[0].pk, deployments[2].pk]
    )


def test_the_caller_of_a_verdict_that_lost_its_race_gets_invalid_transition(
    alice: User,
) -> None:
    (deployment,) = factories.make_started_deployments(alice, 1)
    Deployment(pk=deployment.pk, status=Status.STARTED).transition_to(
        Status.PENDING_CANCELLATION, reason="bob cancelled"
    )
    with pytest.raises(InvalidTransition):
        verdicts.commit(
            deployment, Status.DONE, reason="rollout complete", also={}, shutdown=threading.Event()
        )
    assert deployment.status == Status.STARTED  # as the worker saw it: it re-reads


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split(" ", 1)[0].upper() for q in queries]


def test_a_verdict_with_no_message_to_queue_is_its_update_alone(alice: User) -> None:
    """No subscription: the status is one UPDATE, its own transaction; the subscriptions are
    read before it (on SQLite no thread then holds the writer's lock between statements)."""
    (deployment,) = factories.make_started_deployments(alice, 1)
    with CaptureQueriesContext(connection) as queries:
        verdicts.commit(
            deployment, Status.DONE, reason="rollout complete", also={}, shutdown=threading.Event()
        )
    assert _statements(queries) == ["SELECT", "UPDATE"]
    assert Deployment.objects.get(pk=deployment.pk).status == Status.DONE


def test_a_batch_with_no_message_to_queue_is_its_updates_alone(alice: User) -> None:
    batch = _verdicts(factories.make_started_deployments(alice, 4))
    with CaptureQueriesContext(connection) as queries:
        verdicts.write_batch(batch, shutdown=threading.Event())
    statements = [s for s in _statements(queries) if s not in ("BEGIN", "COMMIT")]
    # The subscriptions read once, before the transaction; in it, the four UPDATEs alone.
    assert statements == ["SELECT", "UPDATE", "UPDATE", "UPDATE", "UPDATE"]
    assert all(v.error is None and v.batch == 4 for v in batch)
    assert set(Deployment.objects.values_list("status", flat=True)) == {Status.DONE}


def test_a_batch_with_subscribers_writes_each_verdict_in_a_savepoint(
    alice: User, settings: Any
) -> None:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    save_subscription(
        actor=alice,
        subscription=Subscription(name="hook", kind=Subscription.Kind.SLACK),
        url="http://127.0.0.1:9/hook",
    )
    batch = _verdicts(factories.make_started_deployments(alice, 3))
    with CaptureQueriesContext(connection) as queries:
        verdicts.write_batch(batch, shutdown=threading.Event())
    statements = _statements(queries)
    assert statements.count("SAVEPOINT") >= 3
    assert statements.count("SELECT") > 1  # (each verdict's message reads its deployment)
    assert Delivery.objects.filter(event=Event.DONE).count() == 3


def test_a_verdict_failing_outside_a_savepoint_leaves_the_others_committed(
    alice: User,
) -> None:
    """A verdict written alone that fails otherwise than by matching no row (here a value
    its UPDATE cannot write) leaves the batch's transaction unusable: the batch is rolled
    back and each verdict written on its own, the others committed, its error its own."""
    deployments = factories.make_started_deployments(alice, 3)
    batch = _verdicts(deployments)
    batch[1].also = {"environment_snapshot": {"not JSON": object()}}
    verdicts.write_batch(batch, shutdown=threading.Event())
    assert batch[0].error is None
    assert isinstance(batch[1].error, TypeError)
    assert batch[2].error is None
    statuses = dict(
        Deployment.objects.filter(pk__in=[d.pk for d in deployments]).values_list("pk", "status")
    )
    assert statuses == {
        deployments[0].pk: Status.DONE,
        deployments[1].pk: Status.STARTED,
        deployments[2].pk: Status.DONE,
    }
    assert batch[1].deployment.status == Status.STARTED  # as its caller saw it


def test_a_claim_with_no_message_to_queue_is_its_update_alone(alice: User) -> None:
    from deployments.engine.worker import claim

    deployment = factories.make_rollout(alice, status="PENDING")
    with CaptureQueriesContext(connection) as queries:
        claimed = claim("worker-1")
    assert claimed is not None
    assert claimed.pk == deployment.pk
    statements = _statements(queries)
    assert "BEGIN" not in statements
    assert "SAVEPOINT" not in statements
    assert statements.count("UPDATE") == 1
    assert Deployment.objects.get(pk=deployment.pk).status == Status.STARTED
