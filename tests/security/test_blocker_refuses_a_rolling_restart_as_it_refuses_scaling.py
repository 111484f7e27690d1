"""A freeze (a blocker) refused deploying and scaling, but a rolling restart of the same
service went through: every pod replaced during the freeze. The rolling restart now asks
the same gate as scaling (the blockers in scope, about the version that runs, and no
deployment in progress), and the page says which blocker refused and why."""

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages

from environments import kube
from environments.models import Environment
from history.models import AuditEvent
from permissions.models import Blocker
from tests.conftest import login
from tests.environments.sockets import deployed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _restarted(environment: Environment, name: str = "web") -> bool:
    live = kube.read_deployment(environment.cluster, environment.namespace, name)
    assert live is not None
    annotations = live["spec"]["template"]["metadata"].get("annotations") or {}
    return kube.RESTARTED_AT in annotations


def _restart(user: User, environment: Environment, service: str = "web") -> list[str]:
    response = login(user).post(f"/environments/{environment.name}/services/{service}/restart/")
    assert response.status_code == 302
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_freeze_refuses_a_rolling_restart_and_names_itself(
    bob: User, staging: Environment
) -> None:
    deployed(bob, staging, "web", replicas=1)
    Blocker.objects.create(
        name="Black Friday freeze", kind=Blocker.Kind.UNCONDITIONAL, environment=staging
    )
    shown = _restart(bob, staging)
    assert any("Cannot restart" in m and "Black Friday freeze" in m for m in shown), shown
    assert not _restarted(staging)
    assert not AuditEvent.objects.filter(action="service.restarted").exists()


def test_an_exempt_user_and_a_blocker_of_another_service_let_it_through(
    alice: User, bob: User, staging: Environment
) -> None:
    deployed(bob, staging, "web", replicas=1)
    other = deployed(bob, staging, "api", replicas=1)
    Blocker.objects.create(
        name="api freeze", kind=Blocker.Kind.UNCONDITIONAL, service=other, environment=staging
    )
    assert not any("Cannot restart" in m for m in _restart(bob, staging, "web"))
    assert _restarted(staging, "web")
    assert any("api freeze" in m for m in _restart(bob, staging, "api"))
    assert not _restarted(staging, "api")
    Blocker.objects.get(name="api freeze").exempt_users.add(bob)
    assert not any("Cannot restart" in m for m in _restart(bob, staging, "api"))
    assert _restarted(staging, "api")
