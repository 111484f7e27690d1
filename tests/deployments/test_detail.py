"""The deployment page: what it shows, and its Cancel / Deploy again / Roll back actions."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment, Service
from deployments.status import Status
from environments.models import Environment
from permissions.models import Blocker
from tests import factories
from tests.conftest import login, make_viewer

pytestmark = pytest.mark.django_db

OLD = "1" * 40
NEW = "2" * 40


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


@pytest.fixture
def checkout() -> Service:
    return factories.make_service("checkout", git_repository_url="https://github.com/acme/checkout")


@pytest.fixture
def deployment(alice: User, staging: Environment, checkout: Service) -> Deployment:
    old = factories.make_version(checkout, OLD)
    new = factories.make_version(checkout, NEW, commit_message="Faster basket", branch="main")
    return factories.make_deployment(
        service=checkout,
        environment=staging,
        deployed_by=alice,
        version=new,
        source_version=old,
        message="first release",
        status_reason="rollout complete",
        rendered_manifests="kind: Deployment\nmetadata:\n  name: checkout\n",
        timeline=[{"at": "2026-01-01T10:00:00+00:00", "source": "worker", "message": "applied"}],
        environment_snapshot={
            "namespace": "staging",
            "services": {
                "checkout": {
                    "service": "checkout",
                    "group": "",
                    "sha": NEW,
                    "replicas": 2,
                    "ready": 2,
                }
            },
        },
    )


def _page(user: User, deployment: Deployment) -> str:
    return login(user).get(f"/deployments/{deployment.pk}/").content.decode()


def test_it_sends_anonymous_visitors_to_the_login_page(
    client: Client, deployment: Deployment
) -> None:
    assert client.get(f"/deployments/{deployment.pk}/").status_code == 302


def test_mallory_who_may_not_view_it_gets_a_404(mallory: User, deployment: Deployment) -> None:
    response = login(mallory).get(f"/deployments/{deployment.pk}/")
    assert response.status_code == 404
    assert "first release" not in response.content.decode()


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
def test_signed_in_personas_who_may_view_see_the_deployment(
    personas: dict[str, User], persona: str, deployment: Deployment
) -> None:
    page = _page(personas[persona], deployment)
    assert "first release" in page
    assert deployment.version.git_commit_sha in page
    assert f'data-ws="/ws/deployments/{deployment.pk}/"' in page


def test_an_unknown_deployment_is_404(alice: User) -> None:
    assert login(alice).get("/deployments/999999/").status_code == 404


def test_it_shows_commit_and_compare_links_timeline_snapshot_and_manifests(
    alice: User, deployment: Deployment
) -> None:
    page = _page(alice, deployment)
    assert f"https://github.com/acme/checkout/commit/{NEW}" in page
    assert f"https://github.com/acme/checkout/compare/{OLD}...{NEW}" in page
    assert "rollout complete" in page
    assert "Faster basket" in page
    assert "applied" in page  # timeline
    assert "2/2" in page  # snapshot
    assert "name: checkout" in page  # manifests


def test_the_version_repository_wins_over_the_service_repository(
    alice: User, deployment: Deployment
) -> None:
    deployment.version.repository_url = "https://github.com/acme/fork.git"
    deployment.version.save()
    assert f"https://github.com/acme/fork/compare/{OLD}...{NEW}" in _page(alice, deployment)


def test_it_shows_the_override_reason_and_the_overridden_blockers(
    alice: User, deployment: Deployment
) -> None:
    deployment.override_reason = "customers are down"
    deployment.overridden_blockers = [
        {"name": "freeze", "kind": "unconditional", "reason": "Blocked by freeze"}
    ]
    deployment.save()
    page = _page(alice, deployment)
    assert "customers are down" in page
    assert "Blocked by freeze" in page


def test_the_page_makes_a_fixed_number_of_queries(alice: User, deployment: Deployment) -> None:
    client = login(alice)
    with CaptureQueriesContext(connection) as queries:
        client.get(f"/deployments/{deployment.pk}/")
    # Session, deployment, then for Deploy again and Roll back: the blockers in scope and the
    # versions' bad marks, one query each for both versions (a non-overridable blocker or a
    # mark disables them even for an administrator).
    assert len(queries) <= 6, [q["sql"] for q in queries]


# -- cancel --------------------------------------------------------------------------------


def _started(deployment: Deployment) -> Deployment:
    Deployment.objects.filter(pk=deployment.pk).update(status=Status.STARTED)
    deployment.refresh_from_db()
    return deployment


def test_bob_sees_cancel_on_a_running_staging_deployment(bob: User, deployment: Deployment) -> None:
    assert "Cancel deployment" in _page(bob, _started(deployment))


def test_nobody_sees_cancel_on_a_finished_deployment(alice: User, deployment: Deployment) -> None:
    assert "Cancel deployment" not in _page(alice, deployment)


@pytest.mark.parametrize("persona", ["carol", "viewer"])
def test_users_without_the_cancel_verb_see_no_cancel_and_a_forged_post_is_refused(
    personas: dict[str, User], persona: str, deployment: Deployment
) -> None:
    personas["viewer"] = make_viewer()
    deployment = _started(deployment)
    client = login(personas[persona])
    assert "Cancel deployment" not in _page(personas[persona], deployment)
    confirm = client.get(f"/deployments/{deployment.pk}/cancel/")
    assert confirm.status_code == 302
    response = client.post(f"/deployments/{deployment.pk}/cancel/", follow=True)
    assert "Not cancelled" in response.content.decode()
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTED


def test_anonymous_cannot_cancel(client: Client, deployment: Deployment) -> None:
    deployment = _started(deployment)
    response = client.post(f"/deployments/{deployment.pk}/cancel/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTED


def test_bob_confirms_and_cancels_a_started_deployment(bob: User, deployment: Deployment) -> None:
    deployment = _started(deployment)
    client = login(bob)
    confirm = client.get(f"/deployments/{deployment.pk}/cancel/").content.decode()
    assert "roll back to" in confirm
    response = client.post(f"/deployments/{deployment.pk}/cancel/")
    assert response.status_code == 302
    assert response["Location"] == f"/deployments/{deployment.pk}/"
    deployment.refresh_from_db()
    assert deployment.status == Status.PENDING_CANCELLATION
    assert "is being cancelled" in client.get(response["Location"]).content.decode()


def test_cancelling_a_finished_deployment_says_why_not(alice: User, deployment: Deployment) -> None:
    response = login(alice).post(f"/deployments/{deployment.pk}/cancel/", follow=True)
    assert "cannot be cancelled" in response.content.decode()


def test_cancel_needs_a_post(alice: User, deployment: Deployment) -> None:
    deployment = _started(deployment)
    login(alice).get(f"/deployments/{deployment.pk}/cancel/")
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTED


# -- deploy again / roll back --------------------------------------------------------------


def test_bob_sees_deploy_again_and_roll_back_on_a_finished_deployment(
    bob: User, deployment: Deployment
) -> None:
    page = _page(bob, deployment)
    assert "Deploy this version again" in page
    assert "Roll back to the previous version" in page


def test_carol_sees_neither_deploy_again_nor_roll_back(carol: User, deployment: Deployment) -> None:
    page = _page(carol, deployment)
    assert "Deploy this version again" not in page
    assert "Roll back" not in page


def test_bob_rolls_back_to_the_previous_version(bob: User, deployment: Deployment) -> None:
    client = login(bob)
    response = client.post(
        f"/deployments/{deployment.pk}/redeploy/", {"which": "previous", "message": "undo"}
    )
    new = Deployment.objects.exclude(pk=deployment.pk).get()
    assert response["Location"] == f"/deployments/{new.pk}/"
    assert new.version.git_commit_sha == OLD
    assert new.message == "undo"
    assert new.deployed_by == bob
    assert new.source_version == deployment.version


def test_bob_deploys_the_same_version_again(bob: User, deployment: Deployment) -> None:
    login(bob).post(f"/deployments/{deployment.pk}/redeploy/", {"which": "this"})
    new = Deployment.objects.exclude(pk=deployment.pk).get()
    assert new.version == deployment.version


def test_a_forged_redeploy_by_carol_is_refused_with_the_explanation(
    carol: User, deployment: Deployment
) -> None:
    client = login(carol)
    response = client.post(f"/deployments/{deployment.pk}/redeploy/", {"which": "this"})
    assert response["Location"].startswith("/deploy/results/")
    [result] = client.get(response["Location"]).context["results"]
    assert result["kind"] == "refused"
    assert "carol" in result["reason"]
    assert Deployment.objects.count() == 1


def test_a_blocked_redeploy_shows_the_blocker(bob: User, deployment: Deployment) -> None:
    Blocker.objects.create(name="freeze", kind="unconditional", environment=deployment.environment)
    client = login(bob)
    response = client.post(f"/deployments/{deployment.pk}/redeploy/", {"which": "previous"})
    page = client.get(response["Location"]).content.decode()
    assert "freeze" in page
    assert Deployment.objects.count() == 1


def test_a_cancelled_deployment_offers_no_roll_back_as_the_batch_page_does(
    bob: User, deployment: Deployment
) -> None:
    # One rule (Deployment.can_be_reverted) for the detail page, the batch page and the
    # service: a CANCELED deployment already runs the version before it.
    Deployment.objects.filter(pk=deployment.pk).update(status=Status.CANCELED)
    deployment.refresh_from_db()
    assert "Roll back to the previous version" not in _page(bob, deployment)
    client = login(bob)
    response = client.post(
        f"/deployments/{deployment.pk}/redeploy/", {"which": "previous"}, follow=True
    )
    assert "Not rolled back: nothing to revert to." in response.content.decode()
    assert Deployment.objects.count() == 1


def test_a_running_deployment_cannot_be_redeployed(alice: User, deployment: Deployment) -> None:
    deployment = _started(deployment)
    response = login(alice).post(
        f"/deployments/{deployment.pk}/redeploy/", {"which": "this"}, follow=True
    )
    assert "Only a finished deployment" in response.content.decode()
    assert Deployment.objects.count() == 1


# -- log lines in the timeline -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "shown"), [("alice", True), ("bob", True), ("carol", True), ("viewer", False)]
)
def test_it_shows_crash_log_lines_only_to_who_may_view_logs(
    personas: dict[str, User], deployment: Deployment, persona: str, shown: bool
) -> None:
    personas["viewer"] = make_viewer()
    deployment.timeline = [
        *deployment.timeline,
        {"at": "2026-01-01T10:01:00+00:00", "source": "logs", "message": "DB_PASSWORD=hunter2"},
    ]
    deployment.save()
    page = _page(personas[persona], deployment)
    assert ("DB_PASSWORD=hunter2" in page) is shown
    assert "applied" in page
