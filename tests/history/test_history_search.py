"""History search covers the commit's message and branch and who deployed, beside the
deployment's message and a sha prefix; events are found by who did them too; the page links
every kind of recorded action."""

import pytest
from django.contrib.auth.models import User

from deployments.models import Service
from environments.models import Environment
from history.services import record_event
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _ids(response: object) -> list[int]:
    return [d["pk"] for d in response.context["deployments"]]  # type: ignore[attr-defined]


@pytest.fixture
def three(alice: User, bob: User, checkout: Service, production: Environment) -> list[int]:
    made = []
    for user, message, branch in (
        (alice, "Fix the basket total", "main"),
        (bob, "Faster search", "feature/speed"),
        (alice, "Tidy", "release-7"),
    ):
        version = factories.make_version(checkout, commit_message=message, branch=branch)
        made.append(
            factories.make_deployment(
                service=checkout, environment=production, deployed_by=user, version=version
            ).pk
        )
    return made


@pytest.mark.parametrize(
    ("query", "which"),
    [("basket", [0]), ("feature/speed", [1]), ("release", [2]), ("bob", [1])],
)
def test_search_finds_commit_messages_branches_and_users(
    alice: User, three: list[int], query: str, which: list[int]
) -> None:
    response = login(alice).get("/history/", {"q": query})
    assert _ids(response) == [three[i] for i in which]


def test_events_are_found_by_who_did_them(alice: User, bob: User, production: Environment) -> None:
    record_event(actor=bob, action="pod.restarted", target=production, summary="Restarted web-1")
    record_event(actor=alice, action="pod.restarted", target=production, summary="Restarted web-2")
    page = login(alice).get("/history/", {"kind": "events", "q": "bob"}).content.decode()
    assert "Restarted web-1" in page
    assert "Restarted web-2" not in page


def test_the_page_links_every_kind_of_recorded_action(alice: User) -> None:
    page = login(alice).get("/history/").content.decode()
    for kind in ("events", "shell", "restart", "scaling", "grant", "blocker", "service"):
        assert f'href="?kind={kind}"' in page


def test_a_shell_session_says_how_long_it_lasted(alice: User, production: Environment) -> None:
    record_event(
        actor=alice,
        action="shell.closed",
        target=production,
        data={
            "pod": "web-1",
            "container": "app",
            "started_at": "2026-11-29T23:31:00+00:00",
            "ended_at": "2026-11-29T23:33:05+00:00",
        },
        summary="Shell closed in web-1/app (production)",
    )
    page = login(alice).get("/history/", {"kind": "shell"}).content.decode()
    assert '<th scope="row">duration</th><td><ins>2 min 5 s</ins></td>' in page
    assert "web-1" in page
