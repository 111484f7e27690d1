"""Several Apollo processes (Redis) watch an environment once: one holds the lease and publishes.

A second `WatcherRegistry` stands for a second Apollo process: it has its own watchers and its
own lease token, and reaches this process's viewers only through Redis, as a real one would.
"""

import asyncio
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from environments import election
from environments.live import watcher as live
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests.environments.sockets import communicator, receive_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.APOLLO_REDIS_URL, reason="the election is Redis's (CI runs it there)"
    ),
]


def _watches(kubesim: KubesimHandle, environment: Environment) -> int:
    # Only the watches of this test's own namespace: another test's watch that is still closing
    # (or a deployment's rollout watch) must not move the count.
    return kubesim.watches_in(environment.namespace)


async def _until(check: Any, timeout: float = 30) -> bool:
    return await asyncio.to_thread(live.wait_for, check, timeout)


async def test_two_processes_watch_the_cluster_once_and_hand_over(
    alice: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    other = live.WatcherRegistry()
    leader = other.acquire(staging.pk)
    assert await _until(lambda: leader.leading and "Pod" in leader.listed)
    assert await _until(lambda: leader.current_state() is not None)

    socket = await communicator(f"/ws/environments/{staging.name}/status/", alice)
    assert (await socket.connect(timeout=30))[0]
    # The viewer here gets the other process's state at once (kept in Redis) ...
    first = await receive_until(socket, lambda m: m["type"] == "environment.state", timeout=30)
    assert first["reachable"]
    here = live.registry.get(staging.pk)
    assert here is not None
    assert not here.leading
    # ... and the cluster is watched once (one watch per kind), not once per process.
    assert await _until(lambda: _watches(kubesim, staging) == len(live.KINDS))
    await asyncio.sleep(2 * live.ELECTION_RETRY_SECONDS)
    assert not here.leading
    assert _watches(kubesim, staging) == len(live.KINDS)

    # The leader's last viewer leaves: this process takes the lease and watches instead.
    other.release(staging.pk)
    assert await _until(lambda: here.leading and "Pod" in here.listed, 30)
    assert await _until(lambda: _watches(kubesim, staging) == len(live.KINDS))
    # Its publications reach the page (the republish after taking over).
    assert await receive_until(socket, lambda m: m["reachable"], timeout=30)
    await socket.disconnect()
    assert await _until(lambda: _watches(kubesim, staging) == 0)
    lease = election.lease_for(staging.pk)
    assert lease is not None
    assert await _until(lambda: lease.holder() is None, 30)


async def test_a_process_that_died_holding_the_lease_is_replaced(
    alice: User, staging: Environment
) -> None:
    lease = election.lease_for(staging.pk)
    assert lease is not None
    # A process that took the lease and then died: nobody renews it, it expires.
    lease.client.set(lease.key, "dead-process", px=1500)
    socket = await communicator(f"/ws/environments/{staging.name}/status/", alice)
    assert (await socket.connect(timeout=30))[0]
    here = live.registry.get(staging.pk)
    assert here is not None
    assert not here.leading
    assert await _until(lambda: here.leading, 30)
    assert await receive_until(socket, lambda m: m["reachable"], timeout=30)
    await socket.disconnect()


async def test_a_livetail_watches_pods_in_its_own_process_without_the_lease(
    staging: Environment, kubesim: KubesimHandle
) -> None:
    other = live.WatcherRegistry()
    leader = other.acquire(staging.pk)
    assert await _until(lambda: leader.leading and "Pod" in leader.listed)
    here = live.registry.acquire(staging.pk)
    seen: list[list[Any]] = []
    here.add_listener(seen.append)
    # The pods are needed here to follow replacements: this process watches too, publishes not.
    assert await _until(lambda: bool(seen) and _watches(kubesim, staging) == 2 * len(live.KINDS))
    assert not here.leading
    here.remove_listener(seen.append)
    assert await _until(lambda: _watches(kubesim, staging) == len(live.KINDS))
    live.registry.release(staging.pk)
    other.release(staging.pk)
    assert await _until(lambda: _watches(kubesim, staging) == 0)
