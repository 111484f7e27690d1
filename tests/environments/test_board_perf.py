"""The status board's cost: a fixed number of queries, under a cap, whatever the number of
services, environments and deployments per cell, for alice and for a user who sees part of it
(bob); and the environments read once per request."""

import re
from datetime import UTC, datetime

import pytest
from django import forms
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from deployments.models import Service
from environments.models import Environment
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

# Session and user, the filters' environments and groups, the page's services, the cells'
# window query, their commits, the blockers (bob adds the reads of what he may view). A change
# that adds a query per row breaks the equality below; one that adds a fixed one raises this on
# purpose.
MAX_QUERIES = {"alice": 8, "bob": 15}
ENVIRONMENTS_READ = re.compile(r'FROM "environments_environment"(?! U\d)')


def _deployed(deployer: User, services: list[Service], environments: list[Environment]) -> None:
    for service in services:
        version = factories.make_version(service, commit_message="Fix", commit_author="dora")
        for environment in environments:
            factories.make_deployment(
                service=service, environment=environment, deployed_by=deployer, version=version
            )


def _queries(user: User, path: str = "/status/") -> list[str]:
    client = login(user)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_the_first_page_costs_the_same_queries_for_more_cells_and_a_longer_history(
    persona: str, request: pytest.FixtureRequest, alice: User
) -> None:
    user: User = request.getfixturevalue(persona)
    staging = factories.make_environment(availability="staging")
    production = factories.make_environment(availability="production")
    first = [factories.make_service() for _ in range(2)]
    _deployed(alice, first, [staging])
    few = _queries(user)
    # Thirty services (more than a page), four more environments, and a history in each cell.
    more_environments = [factories.make_environment(availability="staging") for _ in range(4)]
    services = first + [factories.make_service() for _ in range(28)]
    for _ in range(3):
        _deployed(alice, services, [staging, production, *more_environments])
    many = _queries(user)
    assert len(many) == len(few) <= MAX_QUERIES[persona]


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_the_environments_are_read_once_per_request(
    persona: str, request: pytest.FixtureRequest, alice: User
) -> None:
    # bob's columns come from the catalogue his visibility read (with the names), not from a
    # second read of the environments he may view.
    user: User = request.getfixturevalue(persona)
    staging = factories.make_environment("stage-1", availability="staging")
    factories.make_environment("prod-1", availability="production")
    _deployed(alice, [factories.make_service()], [staging])
    for path, columns in (
        ("/status/", ["prod-1", "stage-1"]),
        ("/status/?environment=stage-1", ["stage-1"]),
    ):
        board = login(user).get(path).context["board"]
        assert [e.name for e in board.environments] == columns
        # Not the holdings' subquery of an environment's name (aliased U0).
        reads = [sql for sql in _queries(user, path) if ENVIRONMENTS_READ.search(sql)]
        assert len(reads) == 1, (path, reads)


def test_a_user_who_may_view_one_environment_has_that_column_only(alice: User) -> None:
    dora = factories.make_user("dora")
    staging = factories.make_environment("stage-1", availability="staging")
    production = factories.make_environment("prod-1", availability="production")
    _deployed(alice, [factories.make_service("api")], [staging, production])
    grant(actor=None, user=dora, verbs=[Verb.VIEW], environment=staging)
    board = login(dora).get("/status/").context["board"]
    assert [(e.name, e.availability) for e in board.environments] == [("stage-1", "staging")]
    assert "prod-1" not in login(dora).get("/status/").content.decode()


def test_the_environment_filter_still_shows_only_that_column(alice: User) -> None:
    services = [factories.make_service("api"), factories.make_service("web")]
    one = factories.make_environment("stage-1", availability="staging")
    other = factories.make_environment("stage-2", availability="staging")
    _deployed(alice, services, [one, other])
    board = login(alice).get("/status/", {"environment": "stage-1"}).context["board"]
    assert [e.name for e in board.environments] == ["stage-1"]
    assert {len(row.cells) for row in board.rows} == {1}


def test_boards_of_the_same_shape_each_show_their_own_cells(alice: User) -> None:
    # The cells' SQL is compiled once per number of environments and services (board._ranked_sql):
    # two boards of one environment and two services each bind their own ids.
    services = [factories.make_service("api"), factories.make_service("web")]
    for name in ("stage-1", "stage-2"):
        environment = factories.make_environment(name, availability="staging")
        for service in services:
            version = factories.make_version(service, commit_message=f"On {name} {service.name}")
            factories.make_deployment(
                service=service, environment=environment, deployed_by=alice, version=version
            )
    client = login(alice)
    for name, other in (("stage-1", "stage-2"), ("stage-2", "stage-1"), ("stage-1", "stage-2")):
        page = client.get("/status/", {"environment": name}).content.decode()
        assert f"On {name} api" in page
        assert f"On {name} web" in page
        assert f"On {other}" not in page
    every = client.get("/status/").content.decode()
    assert all(f"On {n} {s.name}" in every for n in ("stage-1", "stage-2") for s in services)


def test_bobs_page_of_services_is_read_without_a_list_of_every_services_id(bob: User) -> None:
    # bob may view every service of staging, so every service: the page's read of services
    # needs no "id IN (every id)" (compiling it was 7 % of his board at 1,000 services).
    staging = factories.make_environment(availability="staging")
    services = [factories.make_service() for _ in range(25)]
    _deployed(bob, services[:1], [staging])
    reads = [sql for sql in _queries(bob) if 'FROM "deployments_service"' in sql]
    assert reads
    assert all(" IN (" not in sql for sql in reads), reads


def test_a_user_granted_one_service_sees_that_row_only(alice: User) -> None:
    # The other side: someone who sees no environment whole is still filtered by id.
    dora = factories.make_user("dora")
    staging = factories.make_environment(availability="staging")
    shown, hidden = factories.make_service("shown"), factories.make_service("hidden")
    _deployed(alice, [shown, hidden], [staging])
    grant(actor=None, user=dora, verbs=[Verb.VIEW], service=shown)
    board = login(dora).get("/status/").context["board"]
    assert [row.service for row in board.rows] == ["shown"]


@pytest.mark.parametrize(
    ("zone", "title"),
    [("UTC", "2026-01-05 23:07 UTC"), ("Europe/Berlin", "2026-01-06 00:07 CET")],
)
def test_a_cells_time_is_titled_in_the_current_time_zone_to_the_minute(
    alice: User, zone: str, title: str
) -> None:
    finished = datetime(2026, 1, 5, 23, 7, 59, 999999, tzinfo=UTC)
    factories.make_deployment(
        service=factories.make_service("checkout"),
        environment=factories.make_environment("staging-1"),
        deployed_by=alice,
        finished_at=finished,
    )
    with override_settings(TIME_ZONE=zone):
        page = login(alice).get("/status/").content.decode()
    assert f'<time datetime="{finished.isoformat()}" title="{title}">' in page


def test_the_filters_selects_are_the_markup_djangos_select_would_write(alice: User) -> None:
    # The board's filters use history's QuickSelect (built in Python, not a template per
    # option): the same options, values, labels and selection as Django's Select, whitespace
    # between the tags aside; names escaped.
    factories.make_environment("staging")
    factories.make_environment('qa-"<b>"')
    page = login(alice).get("/status/", {"environment": "staging"})
    form = page.context["form"]
    for name in ("environment", "group"):
        field = form[name]
        django_select = forms.Select(attrs=field.field.widget.attrs)
        django_select.choices = field.field.choices
        expected = django_select.render(field.html_name, field.value(), {"id": field.auto_id})
        assert re.sub(r">\s+<", "><", str(field)) == re.sub(r">\s+<", "><", expected)
    assert "&lt;b&gt;" in page.content.decode()


def test_boards_running_as_many_versions_each_show_their_own_commits(alice: User) -> None:
    # The commits' SQL is compiled once per number of versions (board._commits_sql): two
    # services' boards that run as many versions each bind their own versions' ids, and a
    # board that runs more versions is compiled for its count.
    staging = factories.make_environment("stage-1", availability="staging")
    production = factories.make_environment("prod-1", availability="production")
    for name in ("api", "web"):
        service = factories.make_service(name)
        for environment in (staging, production):
            version = factories.make_version(
                service, commit_message=f"{name} on {environment.name}"
            )
            factories.make_deployment(
                service=service, environment=environment, deployed_by=alice, version=version
            )
    client = login(alice)
    for name, other in (("api", "web"), ("web", "api"), ("api", "web")):
        page = client.get("/status/", {"service": name}).content.decode()
        assert f"{name} on stage-1" in page
        assert f"{name} on prod-1" in page
        assert f"{other} on" not in page
    every = client.get("/status/").content.decode()
    assert all(f"{s} on {e}" in every for s in ("api", "web") for e in ("stage-1", "prod-1"))


def test_a_blockers_config_read_by_the_once_compiled_sql_is_the_one_in_force(
    alice: User,
) -> None:
    # The active blockers are read by SQL compiled once per process (board._active_blockers_sql),
    # their config decoded as Django decodes it: a change between two boards shows on the
    # second, and a broken config still marks every cell it scopes (fails closed).
    from permissions.models import Blocker

    production = factories.make_environment("prod-1", availability="production")
    services = [factories.make_service("api"), factories.make_service("web")]
    _deployed(alice, services, [production])
    freeze = Blocker.objects.create(
        name="freeze", kind="unconditional", config={"except_services": ["web"]}
    )
    client = login(alice)
    marked = 'title="Blockers in scope: freeze"'
    assert client.get("/status/").content.decode().count(marked) == 1
    freeze.config = {"except_services": []}
    freeze.save()
    assert client.get("/status/").content.decode().count(marked) == 2
    Blocker.objects.filter(pk=freeze.pk).update(config=["not", "an", "object"])
    assert client.get("/status/").content.decode().count(marked) == 2
    Blocker.objects.filter(pk=freeze.pk).update(active=False)
    assert marked not in client.get("/status/").content.decode()
