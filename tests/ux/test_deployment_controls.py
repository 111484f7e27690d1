"""The deployment page's and the batch page's action controls (issue 13): Cancel, Deploy this
version again, Roll back, Cancel all, Revert all. Each is enabled, disabled with the reason the
server refuses it with (each test posts it and reads the same words), or absent when the
persona may never do it."""

import html
import re
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User

from deployments.models import BadVersion, Deployment, Group, Service
from deployments.status import Status
from environments.models import Environment
from permissions.models import Blocker
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage() -> Environment:
    return factories.make_environment("stage-1", availability="staging")


def _deployment(
    alice: User, service: Service, environment: Environment, status: str, **extra: Any
) -> Deployment:
    extra.setdefault("source_version", factories.make_version(service))
    return factories.make_deployment(
        service=service, environment=environment, deployed_by=alice, status=status, **extra
    )


def _reason(page: str, element_id: str) -> str:
    found = re.search(rf'<[a-z]+ class="disabled-reason" id="{element_id}">([^<]*)<', page)
    assert found is not None, element_id
    return html.unescape(found.group(1))


def _messages(response: object) -> list[str]:
    return [str(m) for m in response.context["messages"]]  # type: ignore[attr-defined]


def test_bob_is_told_why_he_may_not_cancel_in_production_and_the_server_says_the_same(
    alice: User, bob: User, checkout: Service, stage: Environment, production: Environment
) -> None:
    deployment = _deployment(alice, checkout, production, Status.STARTED)
    client = login(bob)
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    reason = _reason(page, "why-cancel")
    assert reason.startswith("bob may not cancel deployments of checkout in production")
    response = client.post(f"/deployments/{deployment.pk}/cancel/", follow=True)
    assert _messages(response) == [f"Not cancelled: {reason}"]
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTED


def test_a_started_deployment_with_nothing_before_it_cannot_be_cancelled_and_says_so(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    deployment = _deployment(alice, checkout, stage, Status.STARTED, source_version=None)
    client = login(bob)
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    reason = _reason(page, "why-cancel")
    assert reason == "nothing ran before this deployment, so there is no version to roll back to"
    response = client.post(f"/deployments/{deployment.pk}/cancel/", follow=True)
    assert _messages(response) == [f"Not cancelled: {reason}."]


def test_deploy_again_waits_for_the_deployment_to_finish_and_says_so(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    deployment = _deployment(alice, checkout, stage, Status.STARTED)
    client = login(bob)
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'id="cancel-link">Cancel deployment' in page
    assert "why-cancel" not in page
    assert "Roll back to the previous version" not in page  # cancelling is the roll back now
    reason = _reason(page, "why-redeploy")
    response = client.post(
        f"/deployments/{deployment.pk}/redeploy/", {"which": "this"}, follow=True
    )
    assert _messages(response) == [reason]
    assert Deployment.objects.count() == 1


def test_bob_is_told_why_he_may_not_roll_back_in_production(
    alice: User, bob: User, checkout: Service, stage: Environment, production: Environment
) -> None:
    deployment = _deployment(alice, checkout, production, Status.DONE)
    client = login(bob)
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    reason = _reason(page, "why-roll-back")
    assert reason == _reason(page, "why-redeploy")
    assert reason.startswith("bob may not deploy checkout in production")
    response = client.post(
        f"/deployments/{deployment.pk}/redeploy/", {"which": "previous"}, follow=True
    )
    [result] = response.context["results"]
    assert result["reason"] == reason
    assert Deployment.objects.count() == 1


@pytest.mark.parametrize("status", [Status.STARTED, Status.DONE])
def test_carol_and_bob_without_grants_anywhere_see_no_action_control(
    alice: User, carol: User, checkout: Service, production: Environment, status: Status
) -> None:
    deployment = _deployment(alice, checkout, production, status)
    page = login(carol).get(f"/deployments/{deployment.pk}/").content.decode()
    for absent in ("Cancel deployment", "Deploy this version again", "Roll back", "disabled"):
        assert absent not in page, absent


def test_cancel_all_on_a_finished_batch_is_disabled_with_the_servers_words(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    batch = uuid.uuid4()
    _deployment(alice, checkout, stage, Status.DONE, batch=batch)
    _deployment(alice, factories.make_service(), stage, Status.FAILED, batch=batch)
    client = login(bob)
    page = client.get(f"/deployments/batch/{batch}/").content.decode()
    reason = _reason(page, "why-cancel-all")
    response = client.post(f"/deployments/batch/{batch}/cancel/", {"all": "1"}, follow=True)
    assert _messages(response) == [reason]
    state = client.get(f"/deployments/batch/{batch}/status/").json()
    assert state["cancel_all"] == {
        "shown": True,
        "allowed": False,
        "reason": reason,
        "disabled": True,
    }


def test_a_batch_row_bob_may_not_cancel_says_why_and_the_server_agrees(
    alice: User, bob: User, checkout: Service, stage: Environment, production: Environment
) -> None:
    batch = uuid.uuid4()
    running = _deployment(alice, checkout, production, Status.STARTED, batch=batch)
    client = login(bob)
    page = client.get(f"/deployments/batch/{batch}/").content.decode()
    reason = _reason(page, f"why-cancel-{running.pk}")
    assert reason.startswith("bob may not cancel deployments of checkout in production")
    assert _reason(page, "why-cancel-all") == reason
    response = client.post(
        f"/deployments/batch/{batch}/cancel/", {"deployment": running.pk}, follow=True
    )
    assert _messages(response) == [f"Not cancelled: #{running.pk} checkout: {reason}."]


def test_carol_sees_no_batch_control(
    alice: User, carol: User, checkout: Service, stage: Environment
) -> None:
    batch = uuid.uuid4()
    _deployment(alice, checkout, stage, Status.STARTED, batch=batch)
    _deployment(alice, factories.make_service(), stage, Status.DONE, batch=batch)
    page = login(carol).get(f"/deployments/batch/{batch}/").content.decode()
    forms = re.findall(r"<form[^>]*>", page)
    assert forms
    assert all(" hidden" in form for form in forms if "/deployments/batch/" in form)
    assert not re.search(r'class="disabled-reason" id="[^"]*">[^<]', page)


def test_the_service_page_says_why_bob_may_not_deploy_read_logs_or_scale_in_production(
    bob: User, stage: Environment, production: Environment
) -> None:
    ingest = factories.make_service("ingest", deployed_per_group=True)
    for environment in (stage, production):
        Group.objects.create(service=ingest, environment=environment, name="eu")
    client = login(bob)
    page = client.get("/services/ingest/").content.decode()
    deploy = _reason_item(page, "why-deploy-production")
    logs = _reason_item(page, "why-logs-production")
    scale = _reason_item(page, "why-scale-production")
    assert deploy.startswith("bob may not deploy ingest in production")
    assert "why-deploy-stage-1" not in page  # allowed in staging: enabled, no reason
    # The server refuses each with the same sentence.
    response = client.get(f"/environments/{production.name}/logs/", {"service": "ingest"})
    assert response.status_code == 403
    assert logs in html.unescape(response.content.decode())
    eu = Group.objects.get(environment=production)
    response = client.post(
        f"/services/ingest/groups/{eu.pk}/scale/", {"replicas": "2"}, follow=True
    )
    assert _messages(response) == [f"Not scaled: {scale}"]
    version = factories.make_version(ingest)
    data = {
        "environments": [production.pk],
        "services": [ingest.pk],
        "sha": version.git_commit_sha,
        "groups": [eu.pk],
        "message": "try",
    }
    response = client.post("/deploy/", data, follow=True)
    assert deploy in html.unescape(response.content.decode())
    assert not Deployment.objects.exists()


def test_carol_sees_no_deploy_or_scale_control_on_the_service_page(
    carol: User, stage: Environment
) -> None:
    ingest = factories.make_service("ingest", deployed_per_group=True)
    Group.objects.create(service=ingest, environment=stage, name="eu")
    page = login(carol).get("/services/ingest/").content.decode()
    assert "/environments/stage-1/logs/?service=ingest" in page
    assert "Deploy" not in page.split('id="groups-stage-1"')[1].split("</section>")[0]
    assert "why-" not in page
    assert "Scale" not in page


def _reason_item(page: str, element_id: str) -> str:
    found = re.search(rf'<li id="{element_id}">[A-Za-z]+: ([^<]*)<', page)
    assert found is not None, element_id
    return html.unescape(found.group(1))


def test_a_blocker_disables_deploy_again_and_roll_back_for_bob_but_not_for_who_may_override(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    deployment = _deployment(alice, checkout, stage, Status.DONE)
    Blocker.objects.create(name="freeze", kind=Blocker.Kind.UNCONDITIONAL, environment=stage)
    client = login(bob)
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    reason = _reason(page, "why-redeploy")
    assert "freeze" in reason
    assert _reason(page, "why-roll-back") == reason
    # The server refuses with the same words, and creates nothing.
    response = client.post(
        f"/deployments/{deployment.pk}/redeploy/", {"which": "previous"}, follow=True
    )
    [result] = response.context["results"]
    assert result["reason"] == reason
    assert Deployment.objects.count() == 1
    # alice may override blockers: the controls stay enabled (the request's page offers it).
    page = login(alice).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "why-redeploy" not in page
    assert "why-roll-back" not in page


def test_a_version_marked_bad_disables_deploy_again_with_who_marked_it(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    deployment = _deployment(alice, checkout, stage, Status.DONE)
    BadVersion.objects.create(
        service=checkout,
        environment=stage,
        sha=deployment.version.git_commit_sha,
        reason="corrupts the basket",
        marked_by=alice,
    )
    page = login(bob).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "corrupts the basket" in _reason(page, "why-redeploy")
    assert "why-roll-back" not in page  # the version before it is not marked: roll back stays
