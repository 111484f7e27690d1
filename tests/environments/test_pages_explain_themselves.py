"""What the environment page and LiveTail say in words: times as dates, a service whose only
deployments failed is Apollo's (not "not deployed by Apollo"), and why a pod has no logs."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User

from environments.live.actions import ServiceGate
from environments.live.consumers import render_state
from environments.live.state import Records, build_status
from environments.live.views import why_no_logs
from permissions.verbs import Verb
from tests import factories

pytestmark = pytest.mark.django_db


def _workload(service: str, sha: str) -> dict[str, object]:
    labels = {"apollo.io/service": service, "apollo.io/commit-sha": sha}
    return {
        "metadata": {"name": service, "labels": labels},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": labels}}},
        "status": {},
    }


def _html(records: Records) -> str:
    environment = factories.make_environment("staging-x")
    state = build_status(
        environment=environment,
        deployments=[_workload("web", "a" * 40)],
        pods=[],
        records=records,
        reachable=True,
        now=datetime(2026, 11, 29, 23, 31, tzinfo=UTC),
    )
    return render_state(state, environment, {})


def test_a_service_whose_only_deployment_failed_links_that_deployment() -> None:
    failed = {"id": 41, "sha": "a" * 40, "by": "bob", "at": "2026-11-29T23:31:00+00:00"}
    html = _html(Records(latest={("web", ""): {**failed, "status": "FAILED"}}))
    assert "not deployed by Apollo" not in html
    assert "no successful deployment yet: #41 failed" in html
    assert 'href="/deployments/41/"' in html


def test_a_workload_apollo_never_deployed_says_so() -> None:
    assert "not deployed by Apollo" in _html(Records())


def test_the_deployment_time_reads_as_a_date(alice: User) -> None:
    done = {"id": 7, "sha": "a" * 40, "by": "alice", "at": "2026-11-29T23:31:00+00:00"}
    records = Records(
        last_done={("web", ""): {**done, "status": "DONE"}},
        by_sha={("web", "", "a" * 40): {**done, "status": "DONE"}},
        latest={("web", ""): {**done, "status": "DONE"}},
    )
    html = _html(records)
    assert "2026-11-29 23:31 UTC" in html
    assert "2026-11-2923:31" not in html


def _pod(phase: str, statuses: list[dict[str, object]]) -> dict[str, object]:
    return {"status": {"phase": phase, "containerStatuses": statuses}}


def test_livetail_says_the_image_cannot_be_pulled() -> None:
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x:1"'}
    pod = _pod("Pending", [{"name": "web", "restartCount": 0, "state": {"waiting": waiting}}])
    text = why_no_logs(pod, "web")
    assert "its image cannot be pulled (ImagePullBackOff: Back-off pulling image" in text


def test_livetail_says_a_container_is_still_being_created() -> None:
    waiting = {"reason": "ContainerCreating"}
    pod = _pod("Pending", [{"name": "web", "state": {"waiting": waiting}}])
    assert "has not started yet (ContainerCreating)" in why_no_logs(pod, "web")


def test_livetail_says_a_pod_is_not_scheduled_yet() -> None:
    assert "none of its containers has been created yet" in why_no_logs(_pod("Pending", []), "")


def test_livetail_says_nothing_of_a_running_container() -> None:
    running = {"running": {"startedAt": "2026-11-29T23:31:00Z"}}
    pod = _pod("Running", [{"name": "web", "restartCount": 0, "state": running}])
    assert why_no_logs(pod, "web") == ""


def test_rolling_restart_is_disabled_with_the_reason_while_a_deployment_runs() -> None:
    environment = factories.make_environment("staging-y")
    running = {"id": 9, "sha": "b" * 40, "by": "bob", "at": "2026-11-29T23:31:00+00:00"}
    state = build_status(
        environment=environment,
        deployments=[_workload("web", "a" * 40)],
        pods=[],
        records=Records(in_progress={("web", ""): {**running, "status": "STARTED"}}),
        reachable=True,
    )
    html = render_state(state, environment, {"web": ServiceGate.allowing(Verb.RESTART)})
    assert (
        '<button type="button" disabled aria-describedby="why-restart-web">Rolling restart</button>'
        in html
    )
    # The words the service refuses with (environments.services.restart_refusal).
    assert "a deployment of web is in progress; restart it when it has finished" in html
    assert "/services/web/restart/" not in html
