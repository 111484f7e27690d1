"""Comparing two deployments: snapshot changes, the manifests diff and the commit range."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import Deployment, Service
from deployments.selectors import snapshot_changes
from environments.models import Environment
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db

OLD, NEW, OTHER = "a" * 40, "b" * 40, "c" * 40


def _snapshot(**shas: str) -> dict[str, object]:
    return {
        "namespace": "staging",
        "services": {k: {"service": k.split("/")[0], "sha": v} for k, v in shas.items()},
    }


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging")


@pytest.fixture
def api() -> Service:
    return factories.make_service("api", git_repository_url="https://github.com/acme/api/")


@pytest.fixture
def pair(alice: User, staging: Environment, api: Service) -> tuple[Deployment, Deployment]:
    a = factories.make_deployment(
        service=api,
        environment=staging,
        deployed_by=alice,
        version=factories.make_version(api, OLD),
        rendered_manifests="kind: Deployment\nimage: api:aaa\nreplicas: 1\n",
        environment_snapshot=_snapshot(api=OLD, web=OTHER, **{"worker/eu": OTHER}),
    )
    b = factories.make_deployment(
        service=api,
        environment=staging,
        deployed_by=alice,
        version=factories.make_version(api, NEW),
        rendered_manifests="kind: Deployment\nimage: api:bbb\nreplicas: 1\n",
        environment_snapshot=_snapshot(api=NEW, web=OTHER, cron=OTHER),
    )
    return a, b


def test_snapshot_changes_name_changed_added_and_removed_services() -> None:
    changes, unchanged = snapshot_changes(
        {"api": {"sha": OLD}, "web": {"sha": OTHER}, "gone": {"sha": OLD}},
        {"api": {"sha": NEW}, "web": {"sha": OTHER}, "new": {"sha": NEW}},
    )
    assert [(c.key, c.change, c.old_sha, c.new_sha) for c in changes] == [
        ("api", "changed", OLD, NEW),
        ("gone", "removed", OLD, ""),
        ("new", "added", "", NEW),
    ]
    assert unchanged == 1


def test_it_sends_anonymous_visitors_to_the_login_page(
    client: Client, pair: tuple[Deployment, Deployment]
) -> None:
    a, b = pair
    assert client.get("/deployments/diff/", {"a": a.pk, "b": b.pk}).status_code == 302


def test_the_diff_page_shows_snapshot_manifests_and_compare_link(
    carol: User, pair: tuple[Deployment, Deployment]
) -> None:
    a, b = pair
    response = login(carol).get("/deployments/diff/", {"a": a.pk, "b": b.pk})
    page = response.content.decode()
    assert response.status_code == 200
    comparison = response.context["comparison"]
    assert {(c.key, c.change) for c in comparison.snapshot_changes} == {
        ("api", "changed"),
        ("cron", "added"),
        ("worker/eu", "removed"),
    }
    assert "-image: api:aaa" in page
    assert "+image: api:bbb" in page
    assert f"https://github.com/acme/api/compare/{OLD}...{NEW}" in page


def test_two_ticked_boxes_compare_oldest_first(
    bob: User, pair: tuple[Deployment, Deployment]
) -> None:
    a, b = pair
    response = login(bob).get("/deployments/diff/", {"d": [b.pk, a.pk]})
    comparison = response.context["comparison"]
    assert (comparison.a, comparison.b) == (a, b)


def test_ticking_one_box_asks_for_two(bob: User, pair: tuple[Deployment, Deployment]) -> None:
    response = login(bob).get("/deployments/diff/", {"d": [pair[0].pk]}, follow=True)
    assert "Tick exactly two deployments" in response.content.decode()


def test_different_services_have_no_commit_range(
    alice: User, pair: tuple[Deployment, Deployment], staging: Environment
) -> None:
    web = factories.make_service("web", git_repository_url="https://github.com/acme/web")
    other = factories.make_deployment(service=web, environment=staging, deployed_by=alice)
    response = login(alice).get("/deployments/diff/", {"a": pair[0].pk, "b": other.pk})
    assert response.context["comparison"].compare_url == ""
    assert "there is no commit range" in response.content.decode()


def test_bad_ids_are_explained(alice: User) -> None:
    response = login(alice).get("/deployments/diff/", {"a": "x", "b": ""})
    assert response.status_code == 400
    assert "Enter a whole number" in response.content.decode()


def test_an_unknown_deployment_is_404(alice: User, pair: tuple[Deployment, Deployment]) -> None:
    assert login(alice).get("/deployments/diff/", {"a": pair[0].pk, "b": 99999}).status_code == 404


def test_the_deployment_page_offers_compare_with(
    alice: User, pair: tuple[Deployment, Deployment]
) -> None:
    page = login(alice).get(f"/deployments/{pair[1].pk}/").content.decode()
    assert 'action="/deployments/diff/"' in page
    assert f'name="a" value="{pair[1].pk}"' in page
