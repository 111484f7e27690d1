"""A control disabled for the state of the target (a deployment in progress, a scaling lock)
says the words the server refuses the action with: the page renders it from the live state
(environments.live.actions), the test then posts the action through the test client."""

import html
import re

import pytest
from django.contrib.auth.models import User

from deployments.models import Group, Service
from deployments.services.groups import update_group
from deployments.status import Status
from environments.live.consumers import render_state, service_permissions
from environments.live.state import build_status, load_records, running_targets
from environments.models import Environment
from permissions.models import Blocker
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)
SHA = "a" * 40


def _workload(service: str, group: str = "") -> dict[str, object]:
    labels = {"apollo.io/service": service, "apollo.io/commit-sha": SHA}
    if group:
        labels["apollo.io/group"] = group
    name = f"{service}-{group}" if group else service
    return {"metadata": {"name": name, "labels": labels}, "spec": {"replicas": 1}, "status": {}}


def _page(user: User, environment: Environment, workloads: list[dict[str, object]]) -> str:
    records = load_records(environment.pk, running_targets(workloads))
    state = build_status(
        environment=environment, deployments=workloads, pods=[], records=records, reachable=True
    )
    names = {entry["service"] for entry in state["services"]}
    gate = service_permissions.func(user, environment, names)  # the socket's own (sync) read
    return render_state(state, environment, gate)


def _reason(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert found is not None, element_id
    return html.unescape(found.group(1))


def _flash(user: User, url: str, data: dict[str, str]) -> str:
    response = login(user).post(url, data, follow=True)
    (message,) = [str(m) for m in response.context["messages"]]
    return message


def test_a_rolling_restart_during_a_deployment_is_disabled_and_refused_in_the_same_words(
    alice: User, bob: User
) -> None:
    stage = factories.make_environment("stage-1", availability="staging")
    web = factories.make_service("web")
    factories.make_deployment(
        service=web,
        environment=stage,
        deployed_by=alice,
        version=factories.make_version(web, SHA),
    )
    factories.make_deployment(
        service=web, environment=stage, deployed_by=alice, status=Status.STARTED
    )
    page = _page(bob, stage, [_workload("web")])
    reason = _reason(page, "why-restart-web")
    assert reason == "a deployment of web is in progress; restart it when it has finished"
    refused = _flash(bob, f"/environments/{stage.name}/services/web/restart/", {"group": ""})
    assert refused == f"Cannot restart: {reason}"


def test_a_locked_group_has_scale_disabled_and_refused_in_the_same_words(
    alice: User, bob: User
) -> None:
    stage = factories.make_environment("stage-1", availability="staging")
    ingest: Service = factories.make_service("ingest", deployed_per_group=True)
    eu = Group.objects.create(service=ingest, environment=stage, name="eu")
    update_group(user=alice, group=eu, scaling_locked=True, scaling_lock_reason="peak")
    page = _page(bob, stage, [_workload("ingest", "eu")])
    reason = _reason(page, "why-scale-ingesteu")
    assert reason == "scaling of ingest/eu in stage-1 is locked: peak"
    refused = _flash(bob, f"/environments/{stage.name}/groups/{eu.pk}/scale/", {"replicas": "3"})
    assert refused == f"Cannot scale: {reason}"


def test_carol_sees_no_scale_nor_restart_of_a_group(alice: User, carol: User) -> None:
    stage = factories.make_environment("stage-1", availability="staging")
    ingest = factories.make_service("ingest", deployed_per_group=True)
    Group.objects.create(service=ingest, environment=stage, name="eu")
    page = _page(carol, stage, [_workload("ingest", "eu")])
    assert "Scale" not in page
    assert "Rolling restart" not in page
    assert "Logs of all pods</a>" in page


def test_a_blocker_disables_scaling_a_group_and_refuses_it_in_the_same_words(
    alice: User, bob: User
) -> None:
    stage = factories.make_environment("stage-1", availability="staging")
    ingest = factories.make_service("ingest", deployed_per_group=True)
    eu = Group.objects.create(service=ingest, environment=stage, name="eu")
    factories.make_deployment(
        service=ingest,
        environment=stage,
        deployed_by=alice,
        version=factories.make_version(ingest, SHA),
        group=eu,
        group_key="eu",
    )
    Blocker.objects.create(name="freeze", kind=Blocker.Kind.UNCONDITIONAL, environment=stage)
    page = _page(bob, stage, [_workload("ingest", "eu")])
    reason = _reason(page, "why-scale-ingesteu")
    assert reason.startswith("blocked by freeze: ")
    assert _reason(page, "why-restart-ingesteu") == reason
    refused = _flash(bob, f"/environments/{stage.name}/groups/{eu.pk}/scale/", {"replicas": "3"})
    assert refused == f"Cannot scale: {reason}"
