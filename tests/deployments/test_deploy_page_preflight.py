"""The Deploy page before the click: what runs now, CI per version, the commits a deploy
brings in (or takes away), the check of every target, and the manifest diff against what
Apollo applied."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import CIStatus, DeployableVersion, Deployment, Service
from deployments.rendering import to_yaml
from deployments.status import Status
from environments.models import Environment
from permissions.models import Blocker
from tests import factories
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def staging() -> Environment:
    return factories.make_environment("staging", availability="staging")


def _history(service: Service, count: int) -> list[DeployableVersion]:
    return [
        factories.make_version(service, commit_message=f"change {i}", commit_author="dev")
        for i in range(count)
    ]


def _running(service: Service, environment: Environment, version: DeployableVersion) -> Deployment:
    """A DONE deployment of the version, with the manifests Apollo applied recorded."""
    deployment = factories.make_deployment(
        service=service,
        environment=environment,
        version=version,
        deployed_by=factories.make_user(f"deployer{version.pk}"),
        status=Status.DONE,
    )
    from deployments.manifests import render_for

    documents = render_for(service=service, environment=environment, version=version, group=None)
    Deployment.objects.filter(pk=deployment.pk).update(rendered_manifests=to_yaml(documents))
    return deployment


def test_the_version_picker_marks_what_runs_now_and_shows_ci(
    bob: User, staging: Environment, checkout: Service
) -> None:
    old, new = _history(checkout, 2)
    _running(checkout, staging, old)
    CIStatus.objects.create(version=new, context="jenkins/unit", state="failure")
    page = login(bob).get(
        "/deploy/versions/", {"services": checkout.pk, "environments": staging.pk}
    )
    body = page.content.decode()
    assert "runs in staging" in body
    [rows] = [rows for _, rows in page.context["recent"]]
    by_sha = {row.version.git_commit_sha: row for row in rows}
    assert by_sha[old.git_commit_sha].runs_in == ["staging"]
    assert by_sha[new.git_commit_sha].runs_in == []
    assert by_sha[new.git_commit_sha].ci == [("jenkins/unit", "failure")]
    assert "jenkins/unit: failure" in body
    assert "no CI status" in body


def _check(client: Any, **data: Any) -> Any:
    response = client.post("/deploy/check/", data)
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    return response


def test_the_check_lists_the_commits_between_the_running_version_and_the_chosen_one(
    bob: User, staging: Environment, checkout: Service
) -> None:
    versions = _history(checkout, 5)
    _running(checkout, staging, versions[1])
    response = _check(
        login(bob),
        environments=staging.pk,
        services=checkout.pk,
        version=versions[4].git_commit_sha,
    )
    [row] = response.context["checks"]
    assert row.kind == "ready"
    assert row.running == versions[1]
    assert row.change.direction == "forward"
    assert row.change.count == 3
    assert [v.commit_message for v in row.change.versions] == ["change 4", "change 3", "change 2"]
    body = response.content.decode()
    assert "3 commits ahead" in body
    assert "change 2</li>" not in body  # the list items carry authors
    assert "change 2 <small>dev</small></li>" in body
    assert "change 1 <small>" not in body  # what runs now is not a commit that comes in
    # Back to an older one: the commits that go away.
    back = _check(
        login(bob), environments=staging.pk, services=checkout.pk, sha=versions[0].git_commit_sha
    )
    [row] = back.context["checks"]
    assert (row.change.direction, row.change.count) == ("back", 1)
    assert "rolls back 1 commit" in back.content.decode()


def test_the_check_names_a_blocker_and_a_missing_message_before_the_click(
    bob: User, staging: Environment, checkout: Service
) -> None:
    strict = factories.make_environment("strict", availability="staging")
    strict.require_deployment_message = True
    strict.save()
    Blocker.objects.create(
        name="friday-freeze",
        kind="time_window",
        environment=staging,
        config={"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "23:59", "timezone": "UTC"},
    )
    [version] = _history(checkout, 1)
    response = _check(
        login(bob),
        environments=[staging.pk, strict.pk],
        services=checkout.pk,
        sha=version.git_commit_sha,
    )
    verdicts = {r.environment.name: r for r in response.context["checks"]}
    assert verdicts["staging"].kind == "blocked"
    assert verdicts["staging"].refusals[0].name == "friday-freeze"
    assert verdicts["strict"].kind == "invalid"
    body = response.content.decode()
    assert "friday-freeze" in body
    assert "00:00" in body
    assert "23:59 UTC" in body  # when it ends
    assert "strict requires a deployment message" in body
    assert not Deployment.objects.exists()


def test_the_check_before_a_version_names_the_permission_refusals(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    response = _check(login(bob), environments=[staging.pk, production.pk], services=checkout.pk)
    verdicts = {r.environment.name: r for r in response.context["checks"]}
    assert verdicts["staging"].kind == "unchecked"
    assert verdicts["production"].kind == "refused"
    assert "bob may not deploy checkout in production" in verdicts["production"].reason


def test_mallory_checks_nothing(mallory: User, staging: Environment, checkout: Service) -> None:
    [version] = _history(checkout, 1)
    response = _check(
        login(mallory), environments=staging.pk, services=checkout.pk, sha=version.git_commit_sha
    )
    assert response.context["checks"] == []
    assert "checkout" not in response.content.decode()


def test_the_check_makes_a_constant_number_of_queries_whatever_the_history(
    bob: User, staging: Environment, checkout: Service
) -> None:
    versions = _history(checkout, 3)
    _running(checkout, staging, versions[0])
    client = login(bob)
    data = {"environments": staging.pk, "services": checkout.pk, "sha": versions[2].git_commit_sha}
    with CaptureQueriesContext(connection) as few:
        _check(client, **data)
    more = _history(checkout, 15)
    for v in more[:5]:
        _running(checkout, staging, v)
    data["sha"] = more[-1].git_commit_sha
    with CaptureQueriesContext(connection) as many:
        _check(client, **data)
    assert len(many) == len(few)


def _target(service: Service, environment: Environment, version: DeployableVersion) -> Any:
    return {"service": service.pk, "environment": environment.pk, "version": version.git_commit_sha}


def test_the_manifest_diff_shows_what_would_change_against_what_is_applied(
    bob: User, staging: Environment, checkout: Service
) -> None:
    old, new = _history(checkout, 2)
    applied = _running(checkout, staging, old)
    response = login(bob).get("/deploy/preview/", _target(checkout, staging, new))
    assert response.status_code == 200
    body = response.content.decode()
    assert "What a deploy would change" in body
    assert f"deployment #{applied.pk}" in body
    diff = response.context["preview"]["diff"].splitlines()
    assert any(line.startswith("-") and old.git_commit_sha in line for line in diff)
    assert any(line.startswith("+") and new.git_commit_sha in line for line in diff)
    assert not Deployment.objects.exclude(pk=applied.pk).exists()


def test_the_manifest_diff_of_a_first_deployment_shows_everything_added(
    bob: User, staging: Environment, checkout: Service
) -> None:
    [version] = _history(checkout, 1)
    response = login(bob).get("/deploy/preview/", _target(checkout, staging, version))
    assert "nothing applied yet" in response.context["preview"]["diff"]


@pytest.mark.parametrize(
    "query",
    [
        {"service": "x", "environment": "1", "version": "a" * 40},
        {"service": "1", "environment": "1", "version": "not-a-sha"},
        {},
    ],
)
def test_the_manifest_diff_explains_bad_input(bob: User, query: dict[str, str]) -> None:
    response = login(bob).get("/deploy/preview/", query)
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()


def test_the_manifest_diff_of_a_target_mallory_may_not_view_is_a_404(
    mallory: User, staging: Environment, checkout: Service
) -> None:
    [version] = _history(checkout, 1)
    query: dict[str, Any] = {
        "service": checkout.pk,
        "environment": staging.pk,
        "version": version.git_commit_sha,
    }
    assert login(mallory).get("/deploy/preview/", query).status_code == 404
    query["service"] = 987654
    assert login(mallory).get("/deploy/preview/", query).status_code == 404


def test_a_secret_value_never_reaches_the_manifest_diff(alice: User, staging: Environment) -> None:
    service = factories.make_service(
        "vaulted",
        extra_templates=(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: vaulted-db\nstringData:\n"
            "  password: hunter2-very-secret\n"
        ),
    )
    [version] = _history(service, 1)
    response = login(alice).get("/deploy/preview/", _target(service, staging, version))
    body = response.content.decode()
    assert response.status_code == 200
    assert "vaulted-db" in body  # the Secret is in the diff
    assert "hunter2-very-secret" not in body


def test_without_javascript_show_versions_and_check_renders_the_check_in_the_page(
    bob: User, staging: Environment, production: Environment, checkout: Service
) -> None:
    [version] = _history(checkout, 1)
    page = login(bob).get(
        "/deploy/",
        {
            "environments": [str(staging.pk), str(production.pk)],
            "services": [str(checkout.pk)],
            "sha": version.git_commit_sha[:8],
        },
    )
    assert page.status_code == 200
    verdicts = {r.environment.name: r.kind for r in page.context["checks"]}
    assert verdicts == {"staging": "ready", "production": "refused"}
    body = page.content.decode()
    assert "Before you deploy" in body
    assert "bob may not deploy checkout in production" in body
    assert not Deployment.objects.exists()
