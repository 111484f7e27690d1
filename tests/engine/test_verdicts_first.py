"""Verdicts first (verdicts.after_verdicts): while a verdict is being recorded, a claim, a
first apply and a timeline write wait for it, for a bounded time (#16)."""

import threading

import pytest
from django.contrib.auth.models import User

from deployments.engine import verdicts
from deployments.models import Deployment
from deployments.status import Status
from tests import factories
from tests.workers import WorkerThread, until

WAIT = 30.0


def test_new_work_goes_at_once_when_no_verdict_is_being_recorded() -> None:
    assert verdicts.after_verdicts(limit=WAIT) is False


def test_new_work_waits_until_the_verdicts_being_recorded_are_committed() -> None:
    release, ended = threading.Event(), threading.Event()
    entered = threading.Event()
    seen: list[bool] = []

    def record() -> None:
        with verdicts.recording():
            entered.set()
            release.wait(WAIT)
            ended.set()  # (before the recording ends: whoever waited sees it set)

    def new_work() -> None:
        waited = verdicts.after_verdicts(limit=WAIT)
        seen.append(waited and ended.is_set())

    recorder = threading.Thread(target=record)
    recorder.start()
    assert entered.wait(WAIT)
    worker = threading.Thread(target=new_work)
    worker.start()
    until(lambda: verdicts.waiting() == 1, timeout=WAIT, what="new work waiting for the verdict")
    release.set()
    worker.join(WAIT)
    recorder.join(WAIT)
    assert seen == [True]
    assert verdicts.waiting() == 0


def test_new_work_waits_while_any_of_several_verdicts_is_being_recorded() -> None:
    with verdicts.recording():
        with verdicts.recording():
            pass
        # One verdict is still being recorded: new work still waits (and gives up at its limit).
        assert verdicts.after_verdicts(limit=0.01) is True
    assert verdicts.after_verdicts(limit=WAIT) is False


def test_new_work_is_never_starved_by_a_verdict_that_takes_long() -> None:
    with verdicts.recording():
        # It waited (True) and went on after its limit while the verdict was still recorded.
        assert verdicts.after_verdicts(limit=0.01) is True
    assert verdicts.waiting() == 0


def test_a_recording_that_fails_lets_new_work_go() -> None:
    with pytest.raises(RuntimeError), verdicts.recording():
        raise RuntimeError("the verdict's write failed")
    assert verdicts.after_verdicts(limit=WAIT) is False


@pytest.mark.django_db(transaction=True)
def test_the_worker_claims_once_the_verdict_being_recorded_is_committed(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim loop waits in after_verdicts (here with a limit longer than the test):
    the PENDING deployment is claimed only once the verdict's recording ended."""
    monkeypatch.setattr(verdicts, "YIELD_SECONDS", WAIT)
    deployment = factories.make_rollout(alice, status="PENDING")

    def status() -> str:
        return str(Deployment.objects.values_list("status", flat=True).get(pk=deployment.pk))

    worker = None
    try:
        with verdicts.recording():
            worker = WorkerThread("verdicts-first")
            until(lambda: verdicts.waiting() == 1, what="the claim loop waiting for the verdict")
            assert status() == Status.PENDING
        until(lambda: status() != Status.PENDING, what="the claim once the verdict was recorded")
    finally:
        if worker is not None:
            worker.stop()
