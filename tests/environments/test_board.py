"""The status board (/status/): environments x services as each user may view them, the
running version and the latest deployment per cell, blockers, filters, and a fixed number of
queries whatever the number of cells."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import Service
from environments.board import SERVICES_PER_PAGE
from environments.models import Environment
from permissions.models import Blocker
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def staging_env() -> Environment:
    return factories.make_environment("stage-1", availability="staging")


def _deploy(
    alice: User, service: Service, environment: Environment, status: str = "DONE", **extra: str
) -> int:
    version = factories.make_version(
        service, commit_message=extra.get("message", "Fix the basket"), commit_author="dora"
    )
    deployment = factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=alice,
        version=version,
        status=status,
        finished_at=timezone.now() - timedelta(hours=2),
    )
    return deployment.pk


def test_alice_sees_what_runs_and_the_failed_deployment_after_it(
    alice: User, checkout: Service, production: Environment, staging_env: Environment
) -> None:
    _deploy(alice, checkout, production)
    failed = _deploy(alice, checkout, production, status="FAILED", message="Break it")
    response = login(alice).get("/status/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Fix the basket" in page
    assert "dora" in page
    assert "2 hours ago" in page
    assert f'href="/deployments/{failed}/">#{failed} Failed</a>' in page
    assert 'href="/environments/production/#service-checkout"' in page
    assert "not deployed" in page  # checkout in stage-1


def test_bob_sees_only_what_he_may_view_and_mallory_nothing(
    alice: User, bob: User, mallory: User, checkout: Service, production: Environment
) -> None:
    hidden = factories.make_environment("qa-hidden", availability="qa")
    _deploy(alice, checkout, hidden, message="Secret thing")
    _deploy(alice, checkout, production)
    page = login(bob).get("/status/").content.decode()
    assert "qa-hidden" not in page
    assert "Secret thing" not in page
    assert "Fix the basket" in page
    page = login(mallory).get("/status/").content.decode()
    assert "checkout" not in page
    assert "Nothing to show" in page


def test_a_blocker_in_scope_marks_the_cell(
    alice: User, checkout: Service, production: Environment, staging_env: Environment
) -> None:
    Blocker.objects.create(name="freeze", kind="unconditional", availability="production")
    page = login(alice).get("/status/").content.decode()
    assert page.count('title="Blockers in scope: freeze"') == 1


def test_filters_narrow_the_board_and_a_name_not_offered_is_refused(
    alice: User, bob: User, checkout: Service, production: Environment, staging_env: Environment
) -> None:
    other = factories.make_service("search")
    _deploy(alice, other, staging_env)
    page = login(alice).get("/status/?service=search&environment=stage-1").content.decode()
    assert 'data-key="search"' in page
    assert 'data-key="checkout"' not in page
    assert 'data-env="production"' not in page
    hidden = factories.make_environment("qa-hidden", availability="qa")
    response = login(bob).get(f"/status/?environment={hidden.name}")
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_the_board_costs_the_same_queries_for_ten_times_the_cells(alice: User) -> None:
    def queries_for(count: int) -> int:
        for _ in range(count):
            service = factories.make_service()
            environment = factories.make_environment()
            _deploy(alice, service, environment)
        client = login(alice)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/status/").status_code == 200
        return len(captured)

    assert queries_for(2) == queries_for(20)


def test_a_commit_message_is_escaped_in_its_cell(
    alice: User, checkout: Service, production: Environment
) -> None:
    _deploy(alice, checkout, production, message='<img src=x onerror="alert(1)">')
    page = login(alice).get("/status/").content.decode()
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def _window(name: str, start: datetime, end: datetime) -> Blocker:
    config = {
        "days": list(range(7)),
        "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}",
        "timezone": "UTC",
    }
    return Blocker.objects.create(
        name=name, kind="time_window", availability="production", config=config
    )


def test_a_time_window_closed_now_does_not_mark_the_cell_and_says_when_it_opens(
    alice: User, checkout: Service, production: Environment
) -> None:
    now = timezone.now().astimezone(UTC)
    _window("night-freeze", now + timedelta(hours=2), now + timedelta(hours=3))
    page = login(alice).get("/status/").content.decode()
    assert "Blockers in scope" not in page
    opens = now + timedelta(hours=2)
    assert f"night-freeze from {opens:%a %H:%M} UTC" in page


def test_a_time_window_open_now_marks_the_cell(
    alice: User, checkout: Service, production: Environment
) -> None:
    now = timezone.now().astimezone(UTC)
    _window("day-freeze", now - timedelta(hours=1), now + timedelta(hours=1))
    page = login(alice).get("/status/").content.decode()
    assert page.count('title="Blockers in scope: day-freeze"') == 1


def test_an_unconditional_blocker_does_not_mark_the_services_it_excepts(
    alice: User, checkout: Service, production: Environment
) -> None:
    factories.make_service("search")
    Blocker.objects.create(
        name="freeze",
        kind="unconditional",
        availability="production",
        config={"except_services": ["search"]},
    )
    page = login(alice).get("/status/").content.decode()
    assert page.count('title="Blockers in scope: freeze"') == 1  # checkout's, not search's


def test_a_large_catalogue_is_paged_by_service_and_every_row_shows_once(
    alice: User, production: Environment
) -> None:
    names = [f"svc-{i:03}" for i in range(SERVICES_PER_PAGE * 2 + 3)]
    for name in names:
        factories.make_service(name)
    client, seen, query = login(alice), [], "/status/"
    while query:
        response = client.get(query)
        assert response.status_code == 200
        rows = response.context["board"].rows
        assert len(rows) <= SERVICES_PER_PAGE
        seen += [row.service for row in rows]
        after = response.context["board"].next_after
        query = f"/status/?{response.context['next_query']}" if after else ""
    assert seen == names


def test_the_service_box_refuses_a_name_the_user_may_not_view_like_a_missing_one(
    alice: User, mallory: User, production: Environment
) -> None:
    secret = factories.make_service("secret")
    _deploy(alice, secret, production)
    assert login(alice).get("/status/?service=secret").status_code == 200
    for name in ("secret", "no-such-service"):
        response = login(mallory).get(f"/status/?service={name}")
        assert response.status_code == 400
        assert f"No service you may view is called &#x27;{name}&#x27;" in response.content.decode()
