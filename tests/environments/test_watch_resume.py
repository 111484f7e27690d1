"""The environment's shared watch after the API server answers 410 Gone (Expired): it lists again
and the status socket keeps showing what changes in the cluster."""

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from environments import kube
from environments.live import watcher as live
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests.environments.sockets import communicator, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _pods_shown(message: dict[str, Any]) -> int:
    return int(message["html"].count('data-pod="web-'))


async def test_a_watch_answered_410_gone_is_resumed_by_listing_again(
    alice: User, staging: Environment, kubesim_faults: KubesimHandle
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    socket = await communicator(f"/ws/environments/{staging.name}/status/", alice)
    assert (await socket.connect(timeout=10))[0]
    await receive_until(socket, lambda m: _pods_shown(m) == 1 and m["reachable"])
    watcher = live.registry.get(staging.pk)
    assert watcher is not None
    relists = watcher.relists
    # Only the page's watches (one a kind) may take the faults: the rollout's own, left open a
    # few seconds for a next rollout (deployments/engine/namespace_watch.py), have closed.
    assert await asyncio.to_thread(
        live.wait_for,
        lambda: kubesim_faults.watches_in(staging.namespace) == len(live.KINDS),
        30,
    )

    # The next watch of each kind (Deployments, Pods) starts from a version the server has
    # compacted away: it answers an ERROR event holding a 410 Expired Status.
    assert await asyncio.to_thread(kubesim_faults.expire_watches, 2) == 2
    assert await asyncio.to_thread(kubesim_faults.end_watches) >= 2

    def both_expired() -> bool:
        return bool(kubesim_faults.state()["expireNextWatches"] == 0)

    assert await asyncio.to_thread(live.wait_for, both_expired, 15)
    # Each kind: once for the ended watch, once for the 410; then a watch that stays open.
    assert await asyncio.to_thread(live.wait_for, lambda: watcher.relists >= relists + 4, 15)
    assert await asyncio.to_thread(
        live.wait_for, lambda: kubesim_faults.watches_in(staging.namespace) >= 2, 30
    )

    # Changes made after the 410 still reach the page.
    await asyncio.to_thread(
        kube.scale_deployment, staging.cluster, staging.namespace, "web", replicas=3
    )
    seen: list[dict[str, Any]] = []

    def three_pods(message: dict[str, Any]) -> bool:
        seen.append(message)
        return _pods_shown(message) == 3

    state = await receive_until(socket, three_pods, timeout=20)
    assert state["reachable"]
    # A 410 is routine: the page never claimed the cluster was unreachable.
    assert all(message["reachable"] for message in seen)
    assert not watcher.errors
    await socket.disconnect()


async def test_a_410_on_every_attempt_for_a_while_is_survived(
    alice: User, staging: Environment, kubesim_faults: KubesimHandle
) -> None:
    await sync_to_async(deployed)(alice, staging, "web", replicas=2)
    socket = await communicator(f"/ws/environments/{staging.name}/status/", alice)
    assert (await socket.connect(timeout=10))[0]
    await receive_until(socket, lambda m: _pods_shown(m) == 2)
    watcher = live.registry.get(staging.pk)
    assert watcher is not None
    await asyncio.to_thread(kubesim_faults.expire_watches, 10)
    await asyncio.to_thread(kubesim_faults.end_watches)
    assert await asyncio.to_thread(
        live.wait_for, lambda: kubesim_faults.state()["expireNextWatches"] == 0, 30
    )
    # A pod deleted behind Apollo's back is replaced; the page shows the new set of pods.
    before = await asyncio.to_thread(_pod_names, staging)
    await asyncio.to_thread(kube.delete_pod, staging.cluster, staging.namespace, before[0])

    def replaced(message: dict[str, Any]) -> bool:
        return _pods_shown(message) == 2 and before[0] not in message["html"]

    state = await receive_until(socket, replaced, timeout=20)
    assert before[1] in state["html"]
    await socket.disconnect()


def _pod_names(environment: Environment) -> list[str]:
    items, _ = kube.list_objects(
        environment.cluster, "Pod", environment.namespace, label_selector="apollo.io/service=web"
    )
    return sorted(i["metadata"]["name"] for i in items)
