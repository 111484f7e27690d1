"""Every rule of "Rollout health" (product brief), on plain dicts shaped like the API's."""

from typing import Any

import pytest

from deployments.engine.health import CRASH_LOOP_RESTARTS, assess

IMAGE = "registry.example.com/shop:" + "a" * 40
Obj = dict[str, Any]


def _deployment(
    *,
    generation: int = 2,
    observed: int = 2,
    desired: int = 3,
    replicas: int = 3,
    updated: int = 3,
    ready: int = 3,
    available: int = 3,
    available_condition: str | None = "True",
    progressing_reason: str = "NewReplicaSetAvailable",
    progressing_message: str = "",
) -> Obj:
    conditions = [
        {
            "type": "Progressing",
            "status": "True",
            "reason": progressing_reason,
            "message": progressing_message,
        },
    ]
    if available_condition is not None:
        conditions.append({"type": "Available", "status": available_condition})
    return {
        "metadata": {"name": "shop", "generation": generation},
        "spec": {"replicas": desired},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": conditions,
        },
    }


def _pod(
    *, waiting: str | None = None, restarts: int = 0, message: str = "", init: bool = False
) -> Obj:
    state: Obj = {"waiting": {"reason": waiting, "message": message}} if waiting else {}
    status_key = "initContainerStatuses" if init else "containerStatuses"
    spec_key = "initContainers" if init else "containers"
    return {
        "metadata": {"name": "shop-abc-1"},
        "spec": {spec_key: [{"name": "app", "image": IMAGE}]},
        "status": {
            "phase": "Pending",
            status_key: [
                {
                    "name": "app",
                    "image": IMAGE,
                    "ready": False,
                    "restartCount": restarts,
                    "state": state,
                },
            ],
        },
    }


# -- observedGeneration ------------------------------------------------------------------------


def test_it_waits_while_the_controller_has_not_observed_the_new_generation() -> None:
    verdict = assess(_deployment(generation=3, observed=2), [])
    assert verdict.state == "progressing"
    assert "observe generation 3" in verdict.reason


def test_an_unobserved_generation_wins_over_counts_that_look_complete() -> None:
    # The counts still describe the previous generation: they must not make it DONE.
    assert assess(_deployment(generation=5, observed=4), []).state == "progressing"


def test_an_unobserved_generation_wins_over_a_stale_deadline_condition() -> None:
    stale = _deployment(generation=3, observed=2, progressing_reason="ProgressDeadlineExceeded")
    assert assess(stale, []).state == "progressing"


def test_a_deployment_without_status_is_progressing() -> None:
    assert assess({"metadata": {"generation": 1}, "spec": {"replicas": 1}}, []).state == (
        "progressing"
    )


# -- ProgressDeadlineExceeded ------------------------------------------------------------------


def test_a_progress_deadline_exceeded_fails_with_the_controllers_message() -> None:
    verdict = assess(
        _deployment(
            updated=1,
            ready=0,
            available=0,
            progressing_reason="ProgressDeadlineExceeded",
            progressing_message='ReplicaSet "shop-abc" has timed out progressing.',
        ),
        [],
    )
    assert verdict.state == "failed"
    assert "progress deadline exceeded" in verdict.reason
    assert 'ReplicaSet "shop-abc" has timed out progressing.' in verdict.reason


def test_a_progress_deadline_without_a_message_still_fails() -> None:
    verdict = assess(_deployment(progressing_reason="ProgressDeadlineExceeded"), [])
    assert verdict.state == "failed"
    assert "made no progress" in verdict.reason


# -- pods of the new ReplicaSet waiting on an unrecoverable reason ----------------------------


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull"])
def test_an_image_that_cannot_be_pulled_fails_naming_the_image(reason: str) -> None:
    verdict = assess(_deployment(updated=1, ready=0, available=0), [_pod(waiting=reason)])
    assert verdict.state == "failed"
    assert f"image {IMAGE} not found" in verdict.reason
    assert reason in verdict.reason
    assert (verdict.pod, verdict.container) == ("shop-abc-1", "app")


def test_an_init_container_whose_image_cannot_be_pulled_fails_too() -> None:
    verdict = assess(_deployment(), [_pod(waiting="ErrImagePull", init=True)])
    assert verdict.state == "failed"
    assert f"image {IMAGE} not found" in verdict.reason


@pytest.mark.parametrize("reason", ["InvalidImageName", "CreateContainerConfigError"])
def test_a_configuration_error_fails_with_the_kubelets_message(reason: str) -> None:
    verdict = assess(
        _deployment(updated=1, ready=0, available=0),
        [_pod(waiting=reason, message='secret "db" not found')],
    )
    assert verdict.state == "failed"
    assert reason in verdict.reason
    assert 'secret "db" not found' in verdict.reason
    assert "shop-abc-1" in verdict.reason


def test_a_pod_failure_wins_over_counts_that_look_complete() -> None:
    # A DONE verdict must never hide a new pod that cannot start.
    assert assess(_deployment(), [_pod(waiting="ImagePullBackOff")]).state == "failed"


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing"])
def test_a_pod_still_starting_keeps_the_rollout_progressing(reason: str) -> None:
    verdict = assess(_deployment(updated=1, ready=0, available=0), [_pod(waiting=reason)])
    assert verdict.state == "progressing"


# -- crash loops ---------------------------------------------------------------------------


def test_a_crash_loop_past_the_threshold_fails_naming_pod_and_container() -> None:
    pod = _pod(waiting="CrashLoopBackOff", restarts=CRASH_LOOP_RESTARTS)
    verdict = assess(_deployment(updated=1, ready=0, available=0), [pod])
    assert verdict.state == "failed"
    assert "crash-looping" in verdict.reason
    assert f"({CRASH_LOOP_RESTARTS} restarts)" in verdict.reason
    assert (verdict.pod, verdict.container) == ("shop-abc-1", "app")


def test_a_crash_loop_below_the_threshold_is_still_progressing() -> None:
    pod = _pod(waiting="CrashLoopBackOff", restarts=CRASH_LOOP_RESTARTS - 1)
    assert assess(_deployment(updated=1, ready=0, available=0), [pod]).state == "progressing"


def test_the_crash_loop_threshold_can_be_chosen() -> None:
    pod = _pod(waiting="CrashLoopBackOff", restarts=1)
    deployment = _deployment(updated=1, ready=0, available=0)
    assert assess(deployment, [pod], crash_restarts=1).state == "failed"
    assert assess(deployment, [pod], crash_restarts=2).state == "progressing"


def test_restarts_without_a_crash_loop_back_off_are_not_a_crash_loop() -> None:
    # A container that restarted often but runs now is judged by readiness, not restarts.
    pod = _pod(restarts=CRASH_LOOP_RESTARTS + 5)
    assert assess(_deployment(), [pod]).state == "done"


# -- DONE, and each missing piece keeping it progressing -----------------------------------


def test_a_complete_rollout_is_done_with_a_summary() -> None:
    verdict = assess(_deployment(), [])
    assert verdict.state == "done"
    assert "3/3 updated, 3/3 ready, 3/3 available" in verdict.reason


def test_more_than_desired_counts_as_enough() -> None:
    assert assess(_deployment(desired=2), []).state == "done"


@pytest.mark.parametrize(
    ("missing", "changes", "shown"),
    [
        ("updated", {"updated": 2, "replicas": 2}, "2/3 updated"),
        ("old replicas", {"replicas": 4}, "1 old replica(s) remaining"),
        ("available", {"available": 2}, "2/3 available"),
        ("ready", {"ready": 2}, "2/3 ready"),
        ("Available=False", {"available_condition": "False"}, "3/3 available"),
        ("no Available condition", {"available_condition": None}, "3/3 available"),
    ],
)
def test_each_missing_piece_keeps_the_rollout_progressing(
    missing: str, changes: dict[str, Any], shown: str
) -> None:
    verdict = assess(_deployment(**changes), [])
    assert verdict.state == "progressing", missing
    assert shown in verdict.reason


def test_replicas_default_to_one_when_the_spec_leaves_them_out() -> None:
    deployment = _deployment(desired=1, replicas=1, updated=1, ready=1, available=1)
    del deployment["spec"]["replicas"]
    assert assess(deployment, []).state == "done"
    deployment["status"]["availableReplicas"] = 0
    assert assess(deployment, []).state == "progressing"


def test_a_healthy_new_pod_does_not_change_a_done_verdict() -> None:
    pod = _pod()
    pod["status"]["containerStatuses"][0].update(ready=True, state={"running": {}})
    assert assess(_deployment(), [pod]).state == "done"
