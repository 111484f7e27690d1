"""The API of rollbacks that stick, per persona: list, mark, unmark, revert (and mark), and the
deployment request refused for a bad version with who and why."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import BadVersion, Deployment
from deployments.services import bad_versions
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.revert.helpers import Scene, scene

pytestmark = pytest.mark.django_db

MARKS = "/api/v1/bad-versions/"


def call(user: User | None, url: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Token {factories.token_for(user)}"} if user else {}
    if body is None:
        return Client().get(url, headers=headers)
    return Client().post(url, json.dumps(body), content_type="application/json", headers=headers)


def mark_body(s: Scene, **extra: str) -> dict[str, str]:
    return {
        "service": s.service.name,
        "environment": s.environment.name,
        "git_commit_sha": s.bad.git_commit_sha,
        "reason": "broke checkout",
        **extra,
    }


def deploy_body(s: Scene, **extra: str) -> dict[str, str]:
    return {
        "service": s.service.name,
        "environment": s.environment.name,
        "git_commit_sha": s.bad.git_commit_sha,
        **extra,
    }


def marked(s: Scene, by: User) -> BadVersion:
    return bad_versions.mark_bad(
        user=by,
        service=s.service,
        environment=s.environment,
        sha=s.bad.git_commit_sha,
        reason="broke checkout",
    ).mark


def test_bob_marks_a_version_bad_with_201_then_200(bob: User) -> None:
    s = scene(bob)
    first = call(bob, MARKS, mark_body(s, git_commit_sha=s.bad.git_commit_sha.upper()))
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["git_commit_sha"], body["marked_by"], body["bad"]) == (
        s.bad.git_commit_sha,
        "bob",
        True,
    )
    again = call(bob, MARKS, mark_body(s, reason="again"))
    assert again.status_code == 200
    assert again.json()["reason"] == "broke checkout"


@pytest.mark.parametrize("who", ["carol", "mallory", "jenkins"])
def test_who_may_not_revert_may_not_mark(who: str, request: pytest.FixtureRequest) -> None:
    user = request.getfixturevalue(who)
    s = scene(request.getfixturevalue("bob"))
    response = call(user, MARKS, mark_body(s))
    assert response.status_code == 403
    assert not BadVersion.objects.exists()


def test_bad_input_answers_400_and_marks_nothing(bob: User) -> None:
    s = scene(bob)
    cases = [
        ({"reason": " "}, "reason"),
        ({"git_commit_sha": "abc"}, "git_commit_sha"),
        ({"service": "nope"}, "service"),
        ({"environment": "nope"}, "environment"),
        ({"git_commit_sha": "f" * 40}, "detail"),
    ]
    for change, field in cases:
        response = call(bob, MARKS, mark_body(s, **change))
        assert response.status_code == 400, (change, response.content)
        assert field in response.json(), (change, response.json())
    assert call(None, MARKS, mark_body(s)).status_code == 401
    assert not BadVersion.objects.exists()


def test_carol_is_refused_a_bad_version_with_the_reason(carol: User, bob: User) -> None:
    # carol may deploy here for this test: the refusal is the mark's, not her grant's.
    grant(actor=None, user=carol, verbs=[Verb.DEPLOY], availability="staging")
    s = scene(bob)
    marked(s, bob)
    response = call(carol, "/api/v1/deployments/", deploy_body(s))
    assert response.status_code == 409
    body = response.json()
    assert "marked bad" in body["detail"]
    assert "by bob" in body["detail"]
    assert "broke checkout" in body["detail"]
    assert body["blockers"][0]["name"] == "bad version"
    assert body["may_override"] is False
    assert Deployment.objects.count() == 2


def test_jenkins_deploying_a_bad_version_is_refused(jenkins: User, bob: User) -> None:
    grant(actor=None, user=jenkins, verbs=[Verb.DEPLOY], availability="staging")
    s = scene(bob)
    marked(s, bob)
    response = call(jenkins, "/api/v1/deployments/", deploy_body(s))
    assert response.status_code == 409
    assert "broke checkout" in response.json()["detail"]


def test_alice_overrides_through_the_api(alice: User, bob: User) -> None:
    s = scene(bob)
    marked(s, bob)
    response = call(alice, "/api/v1/deployments/", deploy_body(s, override_reason="hotfix"))
    assert response.status_code == 201, response.content
    deployment = Deployment.objects.get(pk=response.json()["id"])
    assert deployment.override_reason == "hotfix"


def test_the_list_shows_only_what_each_persona_may_view(
    alice: User, bob: User, carol: User, mallory: User, jenkins: User
) -> None:
    staging = scene(bob)
    production = scene(alice, availability="production")
    marked(staging, bob)
    marked(production, alice)
    seen = {
        user.username: sorted(m["environment"] for m in call(user, MARKS).json())
        for user in (alice, bob, carol, mallory, jenkins)
    }
    both = sorted([staging.environment.name, production.environment.name])
    assert seen == {"alice": both, "bob": both, "carol": both, "mallory": [], "jenkins": []}
    filtered = call(bob, f"{MARKS}?environment={staging.environment.name}").json()
    assert [m["environment"] for m in filtered] == [staging.environment.name]


def test_only_manage_unmarks_and_the_mark_stays_listed_as_undone(alice: User, bob: User) -> None:
    s = scene(bob)
    mark = marked(s, bob)
    url = f"{MARKS}{mark.pk}/unmark/"
    assert call(bob, url, {"reason": "fixed"}).status_code == 403
    assert call(alice, url, {"reason": ""}).status_code == 400
    done = call(alice, url, {"reason": "fixed in config"})
    assert done.status_code == 200
    assert (done.json()["bad"], done.json()["unmarked_by"]) == (False, "alice")
    assert call(alice, url, {"reason": "again"}).status_code == 409
    assert call(bob, MARKS).json() == []
    assert [m["unmark_reason"] for m in call(bob, f"{MARKS}?unmarked=true").json()] == [
        "fixed in config"
    ]


def test_mallory_cannot_unmark_what_she_cannot_see(mallory: User, bob: User) -> None:
    s = scene(bob)
    mark = marked(s, bob)
    assert call(mallory, f"{MARKS}{mark.pk}/unmark/", {"reason": "x"}).status_code == 404
    assert BadVersion.objects.active().count() == 1


def test_bob_reverts_and_marks_bad_through_the_api(bob: User) -> None:
    s = scene(bob)
    response = call(bob, f"/api/v1/deployments/{s.second.pk}/revert/", {"mark_bad": "500s"})
    assert response.status_code == 201, response.content
    revert = Deployment.objects.get(pk=response.json()["id"])
    assert (revert.version, revert.cause) == (s.good, s.second)
    assert BadVersion.objects.active().get().reason == "500s"
    # The API says what a deployment reverts; a deployment that reverts nothing says null.
    assert response.json()["cause"] == s.second.pk
    assert call(bob, f"/api/v1/deployments/{revert.pk}/").json()["cause"] == s.second.pk
    assert call(bob, f"/api/v1/deployments/{s.second.pk}/").json()["cause"] is None


def test_a_revert_without_permission_is_refused_and_changes_nothing(carol: User, bob: User) -> None:
    s = scene(bob)
    response = call(carol, f"/api/v1/deployments/{s.second.pk}/revert/", {"mark_bad": "x"})
    assert response.status_code == 403
    assert Deployment.objects.count() == 2
    assert not BadVersion.objects.exists()
