"""On Redis (several Apollo processes), the status board shows the live state that the
processes watching its environments keep there, read for every environment of the page in one
round trip (an MGET), not one GET per environment (20 round trips were 1.2 ms of the board)."""

import uuid
from collections.abc import Callable

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test.utils import override_settings

from environments import election
from tests import factories
from tests.conftest import login

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not settings.APOLLO_REDIS_URL, reason="the watchers' shared state is Redis's (CI runs it)"
    ),
]


def _commands_on(prefix: str, action: Callable[[], None]) -> list[str]:
    """The Redis commands naming this test's keys (its own prefix) while the action runs, as
    the server saw them (MONITOR), up to a sentinel command sent after it."""
    client = redis.Redis.from_url(str(settings.APOLLO_REDIS_URL), socket_timeout=30)
    sentinel = f"{prefix}:sentinel"
    seen = []
    with client.monitor() as monitor:  # type: ignore[no-untyped-call]
        action()
        client.get(sentinel)
        for event in monitor.listen():
            command = str(event["command"])
            if sentinel in command:
                break
            if prefix in command:
                seen.append(command)
    return seen


def test_the_board_reads_every_environments_live_state_in_one_round_trip(alice: User) -> None:
    prefix = f"board-test-{uuid.uuid4().hex}"
    environments = [factories.make_environment(availability="staging") for _ in range(3)]
    service = factories.make_service("checkout")
    for environment in environments:
        factories.make_deployment(service=service, environment=environment, deployed_by=alice)
    with override_settings(APOLLO_REDIS_PREFIX=prefix):
        # Another process watches the first two environments and kept their state.
        for ready, environment in zip((2, 1), environments[:2], strict=True):
            lease = election.lease_for(environment.pk)
            assert lease is not None
            entry = {"service": "checkout", "group": "", "ready": ready, "desired": 2}
            lease.save_state({"services": [entry]})
        client = login(alice)
        pages = []
        commands = _commands_on(prefix, lambda: pages.append(client.get("/status/")))
        for environment in environments[:2]:
            election.lease_for(environment.pk).forget_state()  # type: ignore[union-attr]
    page = pages[0].content.decode()
    assert 'data-health="healthy">healthy 2/2<' in page
    assert 'data-health="degraded">degraded 1/2<' in page
    assert len(commands) == 1, commands
    assert commands[0].startswith("MGET")
