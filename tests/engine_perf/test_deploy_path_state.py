"""The deploy request's read of its target's state (#16): compiled once per process
(deploy._target_state_sql) and run with each request's values, it answers what the query built
for that request answers, grouped or not, in every state it reports."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from deployments.models import DeployableVersion, Deployment, Group, Service
from deployments.notifications.models import Subscription
from deployments.notifications.services import save_subscription
from deployments.services import bad_versions, deploy
from deployments.status import Status
from environments.models import Environment
from permissions.models import Blocker
from tests import factories

pytestmark = pytest.mark.django_db


State = tuple[bool, int | None, bool, bool, bool]


def _built(
    service: Service, environment: Environment, group: Group | None, version: DeployableVersion
) -> State:
    query = deploy._target_state_query(service, environment, group, version.git_commit_sha)
    running, version_id, bad, subscribed, blocker = query.get()
    return bool(running), version_id, bool(bad), bool(subscribed), bool(blocker)


def _states(
    service: Service, environment: Environment, group: Group | None, version: DeployableVersion
) -> tuple[State, ...]:
    compiled = deploy._target_state(service, environment, group, version)
    return compiled, _built(service, environment, group, version)


def test_the_compiled_read_answers_as_the_built_one_in_every_state(
    settings: Any, alice: User
) -> None:
    settings.APOLLO_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    service, environment = factories.make_service(), factories.make_environment()
    other = factories.make_environment()
    group = Group.objects.create(service=service, environment=environment, name="eu")
    version = factories.make_version(service)
    for g in (None, group):
        compiled, built = _states(service, environment, g, version)
        assert compiled == built == (False, None, False, False, False)

    ran = factories.make_deployment(service=service, environment=environment, deployed_by=alice)
    in_group = factories.make_deployment(
        service=service, environment=environment, deployed_by=alice, group=group
    )
    factories.make_deployment(service=service, environment=other, deployed_by=alice)
    factories.make_deployment(
        service=service,
        environment=environment,
        deployed_by=alice,
        group=group,
        group_key=group.name,
        status="PENDING",
    )
    bad_versions.mark_bad(
        user=None,
        service=service,
        environment=environment,
        sha=version.git_commit_sha,
        reason="broke checkout",
    )
    save_subscription(
        actor=alice,
        subscription=Subscription(
            name="hook", kind=Subscription.Kind.SLACK, service=service, environment=environment
        ),
        url="http://127.0.0.1:9/hook",
    )
    assert (
        _states(service, environment, None, version)
        == ((False, ran.version_id, True, True, False),) * 2
    )
    assert (
        _states(service, environment, group, version)
        == ((True, in_group.version_id, True, True, False),) * 2
    )
    unmarked = factories.make_version(service)
    assert _states(service, other, None, unmarked)[0] == _states(service, other, None, unmarked)[1]


def test_the_compiled_read_is_one_query_with_the_request_s_values() -> None:
    service, environment = factories.make_service(), factories.make_environment()
    version = factories.make_version(service)
    with CaptureQueriesContext(connection) as queries:
        deploy._target_state(service, environment, None, version)
    assert len(queries.captured_queries) == 1
    sql = queries.captured_queries[0]["sql"]
    assert version.git_commit_sha in sql
    assert str(deploy._SERVICE) not in sql
    assert "target-state" not in sql


def test_the_compiled_read_says_whether_a_blocker_s_scope_covers_the_target(
    alice: User,
) -> None:
    service, environment = (
        factories.make_service(),
        factories.make_environment("prod", availability="production"),
    )
    other = factories.make_environment("qa", availability="staging")
    group = Group.objects.create(service=service, environment=environment, name="eu")
    version = factories.make_version(service)
    blocker = Blocker.objects.create(
        name="eu freeze", kind="unconditional", group_name="eu", config={}
    )
    covered = {
        (environment, None): False,
        (environment, group): True,
        (other, None): False,
    }
    for (env, g), expected in covered.items():
        compiled, built = _states(service, env, g, version)
        assert compiled == built
        assert compiled[4] is expected
    blocker.group_name = ""
    blocker.availability = "staging"
    blocker.save()
    blocker.exempt_users.add(alice)  # an exemption is evaluate's to weigh: still in scope
    assert _states(service, other, None, version)[0][4] is True
    assert _states(service, environment, group, version)[0][4] is False
    blocker.active = False
    blocker.save()
    assert _states(service, other, None, version) == ((False, None, False, False, False),) * 2


def _queries_of_a_post(user: User, service: Service, environment: Environment) -> int:
    client = Client(headers={"Authorization": f"Token {factories.token_for(user)}"})
    client.get("/api/v1/deployments/")  # the token's last_used_at, written once a minute
    version = factories.make_version(service)
    body = {"service": service.name, "environment": environment.name}
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/v1/deployments/",
            {**body, "git_commit_sha": version.git_commit_sha},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    Deployment.objects.filter(pk=response.json()["id"]).update(status=Status.DONE)
    return len([q for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]])


def test_a_target_no_blocker_covers_is_not_read_for_blockers_again(alice: User) -> None:
    service, environment = factories.make_service(), factories.make_environment()
    uncovered = _queries_of_a_post(alice, service, environment)
    blocker = Blocker.objects.create(
        name="freeze", kind="unconditional", environment=environment, config={}
    )
    blocker.exempt_users.add(alice)
    covered = _queries_of_a_post(alice, service, environment)
    assert covered == uncovered + 1  # the blockers themselves, read by evaluate
