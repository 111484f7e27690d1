"""The Deploy page's group boxes read the group table alone and take the service and environment
names from the request's catalogue rows (deployments.views._group_rows): the boxes keep the
field's order (environment, service, group names), the groups the user may view only, and
their numbering."""

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from deployments.models import Group
from environments.models import Environment
from permissions.selectors import every_environment, reads_shared_for_one_request, visibility
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.conftest import login
from tests.deploy_page_perf.test_ci_statuses_read import prepared_runs

pytestmark = pytest.mark.django_db


def _boxes(user: User) -> list[tuple[str, str]]:
    """(box id, label) of each group box, in the page's order."""
    text = login(user).get("/deploy/").content.decode()
    found = re.finditer(r'id="(id_groups_\d+)"[^>]*> <label for="\1">([^<]*)</label>', text)
    return [(m[1], m[2]) for m in found]


def _labels(user: User) -> list[str]:
    return [label for _, label in _boxes(user)]


@pytest.fixture
def groups() -> list[Group]:
    """Groups made in an order that is none of the names' orders."""
    staging_b = factories.make_environment("staging-b", availability="staging")
    staging_a = factories.make_environment("staging-a", availability="staging")
    production = factories.make_environment("prod", availability="production")
    zeta, alpha = factories.make_service("zeta"), factories.make_service("alpha")
    made = []
    for service, environment, name in [
        (zeta, staging_a, "us"),
        (alpha, staging_b, "eu"),
        (zeta, staging_a, "ap"),
        (alpha, staging_a, "us"),
        (alpha, production, "eu"),
        (zeta, staging_b, "eu"),
    ]:
        made.append(Group.objects.create(service=service, environment=environment, name=name))
    return made


def test_the_boxes_follow_environment_service_and_group_names(
    groups: list[Group], bob: User
) -> None:
    admin = factories.make_user("root", is_superuser=True, is_staff=True)
    expected = [
        f"{g.service.name} / {g.environment.name} / {g.name}"
        for g in Group.objects.order_by("environment__name", "service__name", "name")
    ]
    assert _labels(admin) == expected
    assert expected[:3] == ["alpha / prod / eu", "alpha / staging-a / us", "zeta / staging-a / ap"]
    assert [box for box, _ in _boxes(admin)] == [f"id_groups_{n}" for n in range(len(groups))]


def test_a_developer_sees_the_groups_of_what_they_may_view_only(
    groups: list[Group], bob: User
) -> None:
    hidden = factories.make_environment("secret", availability="restricted")
    Group.objects.create(service=groups[0].service, environment=hidden, name="eu")
    assert _labels(bob) == [
        f"{g.service.name} / {g.environment.name} / {g.name}"
        for g in Group.objects.exclude(environment=hidden).order_by(
            "environment__name", "service__name", "name"
        )
    ]


def test_a_group_of_an_environment_the_catalogue_rows_lack_is_left_out(
    groups: list[Group], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when the environment was made after the request read every environment (no crash)."""
    admin = factories.make_user("root", is_superuser=True, is_staff=True)
    late = factories.make_environment("late", availability="staging")
    Group.objects.create(service=groups[0].service, environment=late, name="eu")
    read = every_environment

    def read_before_it() -> list[Environment]:
        return [e for e in read() if e.pk != late.pk]

    monkeypatch.setattr("deployments.views.every_environment", read_before_it)
    labels = _labels(admin)
    assert len(labels) == len(groups)
    assert not [label for label in labels if " / late / " in label]


def test_a_user_who_views_every_pair_reads_every_group_by_the_fixed_statement(
    groups: list[Group],
) -> None:
    viewer = factories.make_user("viewer")
    for availability in ("staging", "production"):  # every environment's
        grant(actor=None, user=viewer, verbs=[Verb.VIEW], availability=availability)
    with reads_shared_for_one_request():
        assert visibility(viewer).all_pairs
    statements: list[str] = []

    def record(execute: Any, sql: str, *args: Any) -> Any:
        statements.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(record):
        labels = _labels(viewer)
    assert labels == _labels(factories.make_user("root", is_superuser=True))
    assert len(labels) == len(groups)
    [read] = [sql for sql in statements if 'FROM "deployments_group"' in sql]
    assert "WHERE" not in read


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's prepared statements")
def test_every_groups_read_is_prepared_once_and_reused(groups: list[Group]) -> None:
    client = login(factories.make_user("root", is_superuser=True))
    for _ in range(7):
        assert "alpha / prod / eu" in client.get("/deploy/").content.decode()
    assert prepared_runs("deployments_group") == [7]
