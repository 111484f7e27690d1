"""Every page that shows a deployment status shows its readable name ("Pending cancellation"),
never the raw code; the code stays in a data-status attribute for scripts and tools (issue 13)."""

import re
import uuid

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string

from deployments.live import batch_message, status_payload
from deployments.models import Deployment, Service
from deployments.phases import status_label
from deployments.selectors import batch_state
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

# A raw code as text between tags (not inside an attribute).
RAW = re.compile(r">[^<]*\b(PENDING_CANCELLATION|PENDING|STARTED|DONE|FAILED|CANCELING|CANCELED)\b")


@pytest.fixture
def stage() -> Environment:
    return factories.make_environment("stage-1", availability="staging")


def _one_of_each(alice: User, checkout: Service, stage: Environment) -> dict[Status, Deployment]:
    batch = uuid.uuid4()
    return {
        status: factories.make_deployment(
            service=factories.make_service(f"svc-{status.lower().replace('_', '-')}"),
            environment=stage,
            deployed_by=alice,
            status=status,
            batch=batch,
        )
        for status in Status
    }


def _badges(page: str) -> dict[str, str]:
    """data-status -> the text shown, for every status badge of the page."""
    return dict(
        re.findall(r'<span class="badge status-[a-z_]+" data-status="([A-Z_]+)">([^<]*)<', page)
    )


def test_every_status_has_a_readable_name() -> None:
    assert [status_label(s) for s in Status] == [
        "Pending",
        "Started",
        "Done",
        "Failed",
        "Pending cancellation",
        "Canceling",
        "Canceled",
    ]
    assert status_label("SOMETHING_NEW") == "SOMETHING_NEW"


def test_the_deployment_page_names_the_status_and_keeps_the_code_for_tools(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    deployment = _one_of_each(alice, checkout, stage)[Status.PENDING_CANCELLATION]
    page = login(bob).get(f"/deployments/{deployment.pk}/").content.decode()
    assert _badges(page) == {"PENDING_CANCELLATION": "Pending cancellation"}
    assert not RAW.search(page), RAW.search(page)


def test_the_batch_page_names_every_status_in_rows_and_summary(
    alice: User, carol: User, checkout: Service, stage: Environment
) -> None:
    deployments = _one_of_each(alice, checkout, stage)
    batch = deployments[Status.DONE].batch
    page = login(carol).get(f"/deployments/batch/{batch}/").content.decode()
    assert not RAW.search(page), RAW.search(page)
    for status in Status:
        assert f'data-status="{status}">{status_label(status)}<' in page
        assert f'data-status="{status}">1 {status_label(status).lower()}<' in page


def test_the_batch_page_json_and_socket_payloads_carry_readable_badges(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    deployments = _one_of_each(alice, checkout, stage)
    batch = deployments[Status.DONE].batch
    data = login(bob).get(f"/deployments/batch/{batch}/status/").json()
    shown = {row["status"]: row["badge_html"] for row in data["rows"]}
    assert 'data-status="CANCELING">Canceling<' in shown["CANCELING"]
    assert not RAW.search(data["summary_html"])
    pushed = batch_message(batch_state(bob, list(deployments.values())))
    assert all(not RAW.search(row["badge_html"]) for row in pushed["rows"])
    started = status_payload(deployments[Status.STARTED])
    assert 'data-status="STARTED">Started<' in started["badge_html"]


def test_history_and_home_name_the_statuses(
    alice: User, carol: User, checkout: Service, stage: Environment
) -> None:
    _one_of_each(alice, checkout, stage)
    for url in ("/history/", "/"):
        page = login(carol).get(url).content.decode()
        assert _badges(page).get("PENDING_CANCELLATION") == "Pending cancellation", url
        assert not RAW.search(page), (url, RAW.search(page))


def test_the_cancel_page_and_the_diff_page_name_the_status(
    alice: User, bob: User, checkout: Service, stage: Environment
) -> None:
    deployments = _one_of_each(alice, checkout, stage)
    pending, started = deployments[Status.PENDING], deployments[Status.STARTED]
    done = deployments[Status.DONE]
    page = login(bob).get(f"/deployments/{pending.pk}/cancel/").content.decode()
    assert 'data-status="PENDING">pending<' in page
    page = login(bob).get(f"/deployments/diff/?a={started.pk}&b={done.pk}").content.decode()
    assert _badges(page) == {"STARTED": "Started", "DONE": "Done"}


def test_the_partial_escapes_an_unknown_code() -> None:
    html = render_to_string("deployments/_status_badge.html", {"status": "<b>"})
    assert "<b>" not in html
