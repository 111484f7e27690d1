"""The pages of rollbacks that stick, per persona: roll back and mark bad (bob), the Deploy
page's picker and refusal (carol), the override (alice), the marks list and unmark, and mallory
who sees nothing."""

import uuid

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import BadVersion, Deployment
from deployments.services import bad_versions
from permissions.services import grant
from permissions.verbs import Verb
from tests.conftest import login
from tests.revert.helpers import Scene, scene

pytestmark = pytest.mark.django_db


def marked(s: Scene, by: User, reason: str = "broke checkout") -> BadVersion:
    return bad_versions.mark_bad(
        user=by,
        service=s.service,
        environment=s.environment,
        sha=s.bad.git_commit_sha,
        reason=reason,
    ).mark


def deploy_bad(client: object, s: Scene, **extra: str) -> object:
    data = {
        "environments": [s.environment.pk],
        "services": [s.service.pk],
        "sha": s.bad.git_commit_sha,
        **extra,
    }
    return client.post("/deploy/", data)  # type: ignore[attr-defined]


def test_bob_rolls_back_and_marks_the_version_bad(bob: User) -> None:
    s = scene(bob)
    client = login(bob)
    page = client.get(f"/deployments/{s.second.pk}/").content.decode()
    assert 'name="mark_bad"' in page
    response = client.post(
        f"/deployments/{s.second.pk}/redeploy/",
        {"which": "previous", "mark_bad": "1", "mark_bad_reason": "500s on /pay"},
    )
    revert = Deployment.objects.get(cause=s.second)
    assert response["Location"] == f"/deployments/{revert.pk}/"
    assert BadVersion.objects.active().get().reason == "500s on /pay"
    page = client.get(f"/deployments/{s.second.pk}/").content.decode()
    assert "500s on /pay" in page
    assert f'href="/deployments/{revert.pk}/">#{revert.pk}</a>' in page


def test_a_mark_without_a_reason_is_refused_and_nothing_happens(bob: User) -> None:
    s = scene(bob)
    client = login(bob)
    response = client.post(
        f"/deployments/{s.second.pk}/redeploy/",
        {"which": "previous", "mark_bad": "1", "mark_bad_reason": ""},
        follow=True,
    )
    assert "Give a reason" in response.content.decode()
    assert Deployment.objects.count() == 2
    assert not BadVersion.objects.exists()


def test_bob_marks_a_version_bad_without_reverting(bob: User) -> None:
    s = scene(bob)
    client = login(bob)
    response = client.post(f"/deployments/{s.second.pk}/mark-bad/", {"reason": "slow"})
    assert response["Location"] == f"/deployments/{s.second.pk}/"
    assert BadVersion.objects.active().get().marked_by == bob


def test_carol_sees_no_mark_form_and_is_refused(carol: User, bob: User) -> None:
    s = scene(bob)
    client = login(carol)
    page = client.get(f"/deployments/{s.second.pk}/").content.decode()
    assert 'id="mark-bad"' not in page
    client.post(f"/deployments/{s.second.pk}/mark-bad/", {"reason": "x"})
    assert not BadVersion.objects.exists()


def test_the_picker_strikes_a_bad_version_through_with_who_and_why(bob: User) -> None:
    s = scene(bob)
    marked(s, bob)
    page = login(bob).get(
        "/deploy/versions/", {"services": s.service.pk, "environments": s.environment.pk}
    )
    body = page.content.decode()
    assert f'<del><code title="{s.bad.git_commit_sha}">' in body
    assert f"bad in {s.environment.name}: marked by bob — broke checkout" in body
    assert f'<code title="{s.good.git_commit_sha}">' in body  # the good one is not struck


def test_the_picker_reads_the_marks_in_one_query(bob: User) -> None:
    s = scene(bob)
    marked(s, bob)
    client = login(bob)
    query = {"services": s.service.pk, "environments": s.environment.pk}
    with CaptureQueriesContext(connection) as one:
        client.get("/deploy/versions/", query)
    scene_two = scene(bob, environment=s.environment)
    marked(scene_two, bob)
    query["services"] = [s.service.pk, scene_two.service.pk]  # type: ignore[assignment]
    with CaptureQueriesContext(connection) as two:
        client.get("/deploy/versions/", query)
    # One more service adds its own recent-versions query, the marks stay one query.
    assert len(two) == len(one) + 1


def test_carol_is_refused_on_the_deploy_page_with_the_reason(carol: User, bob: User) -> None:
    # carol may deploy here for this test: the refusal is the mark's, not her grant's.
    grant(actor=None, user=carol, verbs=[Verb.DEPLOY], availability="staging")
    s = scene(bob)
    marked(s, bob)
    response = deploy_bad(login(carol), s)
    body = response.content.decode()  # type: ignore[attr-defined]
    assert "marked bad" in body
    assert "broke checkout" in body
    assert 'name="override_reason"' not in body
    assert Deployment.objects.count() == 2


def test_alice_overrides_on_the_deploy_page(alice: User, bob: User) -> None:
    s = scene(bob)
    marked(s, bob)
    client = login(alice)
    refused = deploy_bad(client, s)
    assert 'name="override_reason"' in refused.content.decode()  # type: ignore[attr-defined]
    deploy_bad(client, s, override_reason="the fix is in the config")
    deployment = Deployment.objects.get(version=s.bad, deployed_by=alice)
    assert deployment.override_reason == "the fix is in the config"
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert "the fix is in the config" in page
    assert "bad version" in page


def test_alice_unmarks_from_the_list(alice: User, bob: User) -> None:
    s = scene(bob)
    mark = marked(s, bob)
    assert 'name="reason"' not in login(bob).get("/bad-versions/").content.decode()
    client = login(alice)
    assert "broke checkout" in client.get("/bad-versions/").content.decode()
    assert client.post(f"/bad-versions/{mark.pk}/unmark/", {"reason": ""}).status_code == 302
    assert BadVersion.objects.active().exists()
    client.post(f"/bad-versions/{mark.pk}/unmark/", {"reason": "config fixed"})
    assert not BadVersion.objects.active().exists()


def test_mallory_sees_nothing(mallory: User, bob: User) -> None:
    s = scene(bob)
    mark = marked(s, bob)
    client = login(mallory)
    assert "broke checkout" not in client.get("/bad-versions/").content.decode()
    assert client.post(f"/deployments/{s.second.pk}/mark-bad/", {"reason": "x"}).status_code == 404
    assert client.post(f"/bad-versions/{mark.pk}/unmark/", {"reason": "x"}).status_code == 404
    assert BadVersion.objects.active().count() == 1


def test_revert_all_of_a_batch_marks_each_reverted_version_bad(bob: User) -> None:
    s = scene(bob)
    other = scene(bob, environment=s.environment)
    batch = uuid.uuid4()
    Deployment.objects.filter(pk__in=[s.second.pk, other.second.pk]).update(batch=batch)
    client = login(bob)
    page = client.get(f"/deployments/batch/{batch}/").content.decode()
    assert 'name="mark_bad_reason"' in page
    client.post(
        f"/deployments/batch/{batch}/revert/",
        {"all": "1", "mark_bad": "1", "mark_bad_reason": "the release broke search"},
    )
    assert set(BadVersion.objects.active().values_list("sha", "reason")) == {
        (s.bad.git_commit_sha, "the release broke search"),
        (other.bad.git_commit_sha, "the release broke search"),
    }
    assert Deployment.objects.filter(cause__in=[s.second, other.second]).count() == 2


def test_revert_all_without_a_reason_reverts_and_marks_nothing(bob: User) -> None:
    s = scene(bob)
    batch = uuid.uuid4()
    Deployment.objects.filter(pk=s.second.pk).update(batch=batch)
    response = login(bob).post(
        f"/deployments/batch/{batch}/revert/",
        {"all": "1", "mark_bad": "1", "mark_bad_reason": ""},
        follow=True,
    )
    assert "Give a reason" in response.content.decode()
    assert Deployment.objects.count() == 2
    assert not BadVersion.objects.exists()


def test_the_list_of_marks_makes_a_fixed_number_of_queries(bob: User) -> None:
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/bad-versions/").status_code == 200
        return len(queries)

    client = login(bob)
    marked(scene(bob), bob)
    one = count()
    for _ in range(3):
        marked(scene(bob), bob)
    assert count() == one


def test_one_row_of_a_batch_is_reverted_and_its_version_marked_bad(bob: User) -> None:
    s = scene(bob)
    other = scene(bob, environment=s.environment)
    batch = uuid.uuid4()
    Deployment.objects.filter(pk__in=[s.second.pk, other.second.pk]).update(batch=batch)
    client = login(bob)
    page = client.get(f"/deployments/batch/{batch}/").content.decode()
    assert f"Why the version of #{s.second.pk} is bad" in page
    client.post(
        f"/deployments/batch/{batch}/revert/",
        {"deployment": s.second.pk, "mark_bad": "1", "mark_bad_reason": "leaks memory"},
    )
    assert list(BadVersion.objects.active().values_list("sha", "reason")) == [
        (s.bad.git_commit_sha, "leaks memory")
    ]
    assert Deployment.objects.filter(cause=s.second).count() == 1
    assert not Deployment.objects.filter(cause=other.second).exists()
