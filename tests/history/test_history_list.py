"""The history page: keyset pages, filters kept across pages, search, constant queries."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import Deployment
from deployments.status import Status
from history.views import PAGE_SIZE
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


def _ids(response: object) -> list[int]:
    return [d["pk"] for d in response.context["deployments"]]  # type: ignore[attr-defined]


def test_it_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    assert client.get("/history/").status_code == 302


def test_it_pages_through_every_deployment_once_newest_first(alice: User, carol: User) -> None:
    service = factories.make_service()
    environment = factories.make_environment()
    created = [
        factories.make_deployment(service=service, environment=environment, deployed_by=alice)
        for _ in range(PAGE_SIZE + 7)
    ]
    client = login(carol)
    first = client.get("/history/")
    seen = _ids(first)
    assert len(seen) == PAGE_SIZE
    second = client.get("/history/", {"after": first.context["next_cursor"]})
    seen += _ids(second)
    assert second.context["next_cursor"] == ""
    assert seen == [d.pk for d in sorted(created, key=lambda d: (d.created_at, d.pk), reverse=True)]


def test_deployments_created_in_the_same_instant_are_neither_lost_nor_repeated(
    alice: User,
) -> None:
    service = factories.make_service()
    environment = factories.make_environment()
    created = [
        factories.make_deployment(service=service, environment=environment, deployed_by=alice)
        for _ in range(PAGE_SIZE + 5)
    ]
    same = timezone.now() - timedelta(days=1)
    Deployment.objects.update(created_at=same)
    client = login(alice)
    first = client.get("/history/")
    second = client.get("/history/", {"after": first.context["next_cursor"]})
    assert _ids(first) + _ids(second) == sorted((d.pk for d in created), reverse=True)


def test_a_malformed_cursor_starts_from_the_newest(alice: User) -> None:
    response = login(alice).get("/history/", {"after": "not-a-cursor"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "2026-02-30T10:00:00+00:00_1",
        "2026-01-01T25:00:00_1",
        "2026-01-01T10:00:00_" + "9" * 30,
        "2026-01-01T10:00:00_²",
    ],
)
def test_it_starts_from_the_newest_on_a_well_formed_but_impossible_cursor(
    alice: User, cursor: str
) -> None:
    factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=alice,
    )
    response = login(alice).get("/history/", {"after": cursor})
    assert response.status_code == 200
    assert len(_ids(response)) == 1


def test_the_next_page_link_keeps_the_filters(alice: User) -> None:
    service = factories.make_service("checkout")
    other = factories.make_service("other")
    environment = factories.make_environment()
    for _ in range(PAGE_SIZE + 3):
        factories.make_deployment(service=service, environment=environment, deployed_by=alice)
        factories.make_deployment(service=other, environment=environment, deployed_by=alice)
    client = login(alice)
    first = client.get("/history/", {"service": "checkout", "status": "DONE"})
    query = parse_qs(urlsplit("?" + first.context["next_query"]).query)
    assert query["service"] == ["checkout"]
    assert query["status"] == ["DONE"]
    assert query["after"] == [first.context["next_cursor"]]
    assert f'href="?{first.context["next_query"]}"' in first.content.decode().replace("&amp;", "&")
    second = client.get("/history/", {k: v[0] for k, v in query.items()})
    rows = first.context["deployments"] + second.context["deployments"]
    assert len(rows) == PAGE_SIZE + 3
    assert {d["service_name"] for d in rows} == {"checkout"}


def test_it_filters_by_service_environment_user_and_status(
    alice: User, bob: User, carol: User
) -> None:
    checkout, basket = factories.make_service("checkout"), factories.make_service("basket")
    staging, prod = factories.make_environment("staging"), factories.make_environment("prod")
    wanted = factories.make_deployment(
        service=checkout, environment=prod, deployed_by=bob, status=Status.FAILED
    )
    factories.make_deployment(service=checkout, environment=prod, deployed_by=bob)
    factories.make_deployment(
        service=checkout, environment=staging, deployed_by=bob, status=Status.FAILED
    )
    factories.make_deployment(
        service=basket, environment=prod, deployed_by=bob, status=Status.FAILED
    )
    factories.make_deployment(
        service=checkout, environment=prod, deployed_by=alice, status=Status.FAILED
    )
    response = login(carol).get(
        "/history/",
        {"service": "checkout", "environment": "prod", "user": "bob", "status": "FAILED"},
    )
    assert _ids(response) == [wanted.pk]


def test_it_filters_by_date_range_including_the_last_day(alice: User) -> None:
    service, environment = factories.make_service(), factories.make_environment()
    days = {}
    for ago in (0, 3, 10):
        d = factories.make_deployment(service=service, environment=environment, deployed_by=alice)
        Deployment.objects.filter(pk=d.pk).update(created_at=timezone.now() - timedelta(days=ago))
        days[ago] = d.pk
    since = (timezone.localdate() - timedelta(days=5)).isoformat()
    until = (timezone.localdate() - timedelta(days=3)).isoformat()
    response = login(alice).get("/history/", {"since": since, "until": until})
    assert _ids(response) == [days[3]]


def test_it_searches_messages_and_sha_prefixes(alice: User) -> None:
    service, environment = factories.make_service(), factories.make_environment()
    by_message = factories.make_deployment(
        service=service, environment=environment, deployed_by=alice, message="Hotfix for Basket"
    )
    by_sha = factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=alice,
        version=factories.make_version(service, "beef" + "0" * 36),
    )
    factories.make_deployment(service=service, environment=environment, deployed_by=alice)
    client = login(alice)
    assert _ids(client.get("/history/", {"q": "basket"})) == [by_message.pk]
    assert _ids(client.get("/history/", {"q": "BEEF"})) == [by_sha.pk]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"user": "nobody"}, "No user is called"),
        ({"service": "nope"}, "Select a valid choice"),
        ({"status": "LOST"}, "Select a valid choice"),
        ({"since": "2026-02-02", "until": "2026-01-01"}, "is before"),
        ({"since": "yesterday"}, "Enter a valid date"),
    ],
)
def test_bad_filters_are_explained(alice: User, params: dict[str, str], error: str) -> None:
    factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=alice,
    )
    response = login(alice).get("/history/", params)
    assert response.status_code == 200
    assert error in response.content.decode().replace("&#x27;", "'")
    assert _ids(response) == []


def test_rows_have_boxes_to_compare_two_deployments(alice: User) -> None:
    d = factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=alice,
    )
    page = login(alice).get("/history/").content.decode()
    assert 'action="/deployments/diff/"' in page
    assert f'name="d" value="{d.pk}"' in page


@pytest.mark.parametrize(
    "params",
    [{}, {"service": "svc-0", "status": "DONE", "user": "user0", "q": "deploy"}],
)
def test_its_query_count_is_constant(alice: User, params: dict[str, str]) -> None:
    service = factories.make_service("svc-0")
    environment = factories.make_environment()
    user0 = factories.make_user("user0")
    factories.make_deployment(service=service, environment=environment, deployed_by=user0)
    with CaptureQueriesContext(connection) as few:
        login(alice).get("/history/", params)
    for i in range(20):
        factories.make_deployment(
            service=factories.make_service(),
            environment=factories.make_environment(),
            deployed_by=factories.make_user(f"user{i + 1}"),
            message="deploy",
        )
        factories.make_deployment(
            service=service, environment=environment, deployed_by=user0, message="deploy"
        )
    with CaptureQueriesContext(connection) as many:
        response = login(alice).get("/history/", params)
    assert len(_ids(response)) > 1
    assert len(many) == len(few)
