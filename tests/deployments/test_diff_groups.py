"""The diff of two deployments of a grouped service: snapshot rows per service/group.

The snapshots are the real ones: taken from kubesim by the worker after each deployment."""

import re

import pytest
from django.contrib.auth.models import User

from deployments.models import DeployableVersion, Deployment, Group, Service
from deployments.services.deploy import request_deployment
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.conftest import login
from tests.kubeenv import wait_until_terminal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

ROW = re.compile(
    r'<tr class="change-(\w+)"><td>([^<]+)</td><td>\w+</td>'
    r'<td><code title="(\w*)">[^<]*</code></td><td><code title="(\w*)">'
)


def _deploy(user: User, group: Group, version: DeployableVersion) -> Deployment:
    outcome = request_deployment(
        user=user,
        service=group.service,
        environment=group.environment,
        version=version,
        group=group,
    )
    assert outcome.deployment is not None, outcome.reason
    deployment = wait_until_terminal(outcome.deployment)
    assert deployment.status == Status.DONE, deployment.status_reason
    return deployment


def _ingest(staging: Environment) -> tuple[Service, dict[str, Group]]:
    service = factories.make_service(
        "ingest", deployed_per_group=True, git_repository_url="https://github.com/acme/ingest"
    )
    groups = {
        name: Group.objects.create(service=service, environment=staging, name=name)
        for name in ("eu", "us", "apac")
    }
    return service, groups


def test_the_diff_names_each_group_changed_added_or_unchanged(
    alice: User, carol: User, staging: Environment
) -> None:
    service, groups = _ingest(staging)
    old, new = factories.make_version(service), factories.make_version(service)
    v1, v2 = old.git_commit_sha, new.git_commit_sha
    _deploy(alice, groups["eu"], old)
    a = _deploy(alice, groups["us"], old)
    _deploy(alice, groups["apac"], new)
    b = _deploy(alice, groups["eu"], new)
    assert set(a.environment_snapshot["services"]) == {"ingest/eu", "ingest/us"}
    assert b.environment_snapshot["services"]["ingest/us"]["group"] == "us"

    response = login(carol).get("/deployments/diff/", {"a": a.pk, "b": b.pk})
    assert response.status_code == 200
    comparison = response.context["comparison"]
    assert [(c.key, c.change, c.old_sha, c.new_sha) for c in comparison.snapshot_changes] == [
        ("ingest/apac", "added", "", v2),
        ("ingest/eu", "changed", v1, v2),
    ]
    assert comparison.unchanged == 1  # ingest/us
    page = response.content.decode()
    assert ROW.findall(page) == [
        ("added", "ingest/apac", "", v2),
        ("changed", "ingest/eu", v1, v2),
    ]
    assert "1 service(s) unchanged." in page
    assert "<td>ingest / us</td><td>ingest / eu</td>" in page
    assert f"https://github.com/acme/ingest/compare/{v1}...{v2}" in page
    # The manifests differ in the group's name, labels and image.
    assert "-  name: ingest-us" in page
    assert "+  name: ingest-eu" in page


def test_the_same_group_redeployed_shows_only_that_group_changed(
    alice: User, staging: Environment
) -> None:
    service, groups = _ingest(staging)
    old, new = factories.make_version(service), factories.make_version(service)
    for name in ("eu", "us"):
        _deploy(alice, groups[name], old)
    a = _deploy(alice, groups["apac"], old)
    b = _deploy(alice, groups["us"], new)

    # Ticked on the history page, newest first: compared oldest first.
    response = login(alice).get("/deployments/diff/", {"d": [b.pk, a.pk]})
    comparison = response.context["comparison"]
    assert (comparison.a, comparison.b) == (a, b)
    assert [(c.key, c.change) for c in comparison.snapshot_changes] == [("ingest/us", "changed")]
    assert comparison.unchanged == 2
    assert ROW.findall(response.content.decode()) == [
        ("changed", "ingest/us", old.git_commit_sha, new.git_commit_sha)
    ]
