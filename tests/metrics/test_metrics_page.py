"""The Metrics page: the hand-computed figures shown, for what each persona may view."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login
from tests.metrics.history import at, make_story

pytestmark = pytest.mark.django_db
PAGE = "/history/metrics/"
MARCH = {"start": "2026-03-01", "end": "2026-03-10"}


def text(response: Any) -> str:
    return " ".join(response.content.decode().split())


def test_alice_reads_the_four_figures_of_staging_with_their_bands(alice: User) -> None:
    make_story(alice)
    response = login(alice).get(PAGE, {**MARCH, "environment": "staging"})
    assert response.status_code == 200
    page = text(response)
    assert "0.60 a day" in page
    assert "median 12 h" in page
    assert "p90 3 d 14 h" in page
    assert "44 %" in page
    assert "median 2 h" in page
    assert "3 restored, 1 not yet" in page
    for band in ("high", "elite", "low"):
        assert f">{band}</strong>" in page
    assert "<svg" in page  # the plots are in the page, no script needed
    assert "/api/v1/metrics/?environment=staging" in page


def test_the_team_wide_page_counts_every_environment(alice: User) -> None:
    make_story(alice)
    page = text(login(alice).get(PAGE, MARCH))
    assert "10 deployments finished, 7 done, 4 failed or reverted" in page
    assert "median 8 h" in page


def test_a_viewer_of_staging_only_sees_only_staging_in_the_team_figures(alice: User) -> None:
    story = make_story(alice)
    victor = factories.make_user("victor")
    grant(actor=None, user=victor, verbs=[Verb.VIEW], environment=story.staging)
    page = text(login(victor).get(PAGE, MARCH))
    assert "9 deployments finished, 6 done, 4 failed or reverted" in page
    refused = login(victor).get(PAGE, {**MARCH, "environment": "production"})
    assert refused.status_code == 400
    assert "Select a valid choice" in text(refused)


@pytest.mark.parametrize("persona", ["bob", "carol"])
def test_viewers_of_both_environments_see_the_team_figures(
    persona: str, request: Any, alice: User
) -> None:
    make_story(alice)
    page = text(login(request.getfixturevalue(persona)).get(PAGE, MARCH))
    assert "10 deployments finished" in page


def test_mallory_sees_no_deployment_and_cannot_name_a_service(alice: User, mallory: User) -> None:
    make_story(alice)
    response = login(mallory).get(PAGE, MARCH)
    assert response.status_code == 200
    assert "0 deployments finished" in text(response)
    assert login(mallory).get(PAGE, {"service": "checkout"}).status_code == 400


def test_anonymous_users_are_sent_to_the_log_in(client: Any) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2026-03-10", "end": "2026-03-01"}, "The period starts after it ends."),
        ({"start": "2020-01-01", "end": "2026-03-01"}, "The period is at most 366 days."),
        ({"start": "not-a-date"}, "Enter a valid date."),
        ({"service": "no-such-service"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_400_that_says_why(alice: User, query: dict[str, str], message: str) -> None:
    response = login(alice).get(PAGE, query)
    assert response.status_code == 400
    assert message in text(response)


def test_a_post_is_refused(alice: User) -> None:
    assert login(alice).post(PAGE).status_code == 405


def test_the_page_takes_as_many_queries_for_many_deployments_as_for_few(alice: User) -> None:
    story = make_story(alice)
    client = login(alice)
    client.get(PAGE, MARCH)  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get(PAGE, MARCH)
    for day in range(1, 10):
        factories.make_deployment(
            service=story.service,
            environment=story.production,
            deployed_by=alice,
            version=story.versions["v2"],
            started_at=at(day, 5),
            finished_at=at(day, 5),
        )
    client.get(PAGE, MARCH)  # the first view after they ended writes their figures
    with CaptureQueriesContext(connection) as many:
        client.get(PAGE, MARCH)
    assert len(many) == len(few)


# A read of the reader's grant holdings: one per request, shared by the visibility (`view`) and
# the header's Deploy link (`deploy`) (permissions.middleware).
VIEW_GRANTS = 'FROM "permissions_grantuserobjectpermission"'


@pytest.mark.parametrize("path", [PAGE, "/api/v1/metrics/"])
def test_bob_s_grants_are_read_once_per_metrics_request(alice: User, bob: User, path: str) -> None:
    make_story(alice)
    client = login(bob)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path, {**MARCH, "service": "checkout"}).status_code == 200
    assert sum(VIEW_GRANTS in q["sql"] for q in queries) == 1
