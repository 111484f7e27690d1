"""A deployment handed over at shutdown keeps its ended lease: once the rollout thread says
stop_renewing, no beat of the heartbeat extends the lease again (a beat in flight when it was
ended used to write now + 30 s over it, so the next worker waited the whole lease)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.engine.heartbeat import Heartbeat
from deployments.models import Deployment
from deployments.status import Status
from tests import factories

pytestmark = pytest.mark.django_db

OWNER = "worker-under-test"


def leased(user: User) -> Deployment:
    return factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=user,
        status=Status.STARTED,
        lease_owner=OWNER,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )


def lease_of(deployment: Deployment) -> object:
    deployment.refresh_from_db()
    return deployment.lease_expires_at


def test_a_beat_renews_the_lease_of_a_deployment_it_drives(bob: User) -> None:
    deployment = leased(bob)
    heartbeat = Heartbeat(owner=OWNER, lease=timedelta(seconds=30))
    heartbeat.hold(deployment.pk)
    heartbeat.beat()
    assert lease_of(deployment) > timezone.now() + timedelta(seconds=20)  # type: ignore[operator]


def test_after_stop_renewing_no_beat_extends_the_ended_lease(bob: User) -> None:
    deployment = leased(bob)
    heartbeat = Heartbeat(owner=OWNER, lease=timedelta(seconds=30))
    heartbeat.hold(deployment.pk)
    heartbeat.stop_renewing(deployment.pk)
    ended = timezone.now()
    Deployment.objects.filter(pk=deployment.pk).update(lease_expires_at=ended)
    heartbeat.beat()
    assert lease_of(deployment) == ended
    assert heartbeat.driving() == 0
