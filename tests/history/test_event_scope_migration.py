"""History migration 0002 fills in the service and environment of events written before it,
from their targets, so that the History page shows them to who may view them."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import User

from history.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db

migration = importlib.import_module("history.migrations.0002_event_scope")


def _old(action: str, target_type: str, target_id: object, **data: object) -> AuditEvent:
    return AuditEvent.objects.create(
        actor_name="alice",
        action=action,
        summary=action,
        target_type=target_type,
        target_id=str(target_id),
        data=data,
    )


def test_existing_events_get_the_scope_of_their_target(alice: User) -> None:
    environment = factories.make_environment("qa")
    service = factories.make_service("web")
    deployment = factories.make_deployment(
        service=service, environment=environment, deployed_by=alice
    )
    requested = _old("deployment.requested", "deployments.deployment", deployment.pk)
    registered = _old("version.registered", "deployments.deployableversion", deployment.version_id)
    restarted = _old("pod.restarted", "environments.environment", environment.pk, service="web")
    gone = _old("grant.revoked", "permissions.grant", 999_999)
    cluster = _old("cluster.changed", "environments.cluster", environment.cluster_id)
    missing_env = _old("shell.opened", "environments.environment", 999_999)
    migration.fill_scope(apps, None)
    scopes = {
        e.pk: (e.service_id, e.environment_id)
        for e in AuditEvent.objects.filter(actor_name="alice", actor=None)
    }
    assert scopes[requested.pk] == (service.pk, environment.pk)
    assert scopes[registered.pk] == (service.pk, None)
    assert scopes[restarted.pk] == (service.pk, environment.pk)
    # What cannot be placed stays unscoped: superusers and manage holders only.
    for event in (gone, cluster, missing_env):
        assert scopes[event.pk] == (None, None)
