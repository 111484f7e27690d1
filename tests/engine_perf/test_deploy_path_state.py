"""The deploy request's read of its target's state (#16): compiled once per process
(deploy._target_state_sql) and run with each request's values, it answers what the query built
for that request answers, grouped or not, in every state it reports."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import DeployableVersion, Group, Service
from deployments.notifications.models import Subscription
from deployments.notifications.services import save_subscription
from deployments.services import bad_versions, deploy
from environments.models import Environment
from tests import factories

pytestmark = pytest.mark.django_db


def _built(
    service: Service, environment: Environment, group: Group | None, version: DeployableVersion
) -> tuple[bool, int | None, bool, bool]:
    query = deploy._target_state_query(service, environment, group, version.git_commit_sha)
    running, version_id, bad, subscribed = query.get()
    return bool(running), version_id, bool(bad), bool(subscribed)


def _states(
    service: Service, environment: Environment, group: Group | None, version: DeployableVersion
) -> tuple[tuple[bool, int | None, bool, bool], ...]:
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
        assert compiled == built == (False, None, False, False)

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
        _states(service, environment, None, version) == ((False, ran.version_id, True, True),) * 2
    )
    assert (
        _states(service, environment, group, version)
        == ((True, in_group.version_id, True, True),) * 2
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
