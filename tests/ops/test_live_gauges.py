"""The open LiveTail and shell gauges follow the sockets: up when one is accepted, down when it
closes, unchanged by a refused one."""

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from environments import kube
from environments.models import Environment
from tests.environments.sockets import communicator, connect_code, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]
TOKEN = "scrape-token-0123456789abcdef"


def _gauges() -> dict[str, float]:
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    return {
        family.name: family.samples[0].value
        for family in text_string_to_metric_families(text)
        if family.name in ("apollo_live_tails_open", "apollo_shells_open")
    } | {
        "connect_calls": sum(
            s.value
            for family in text_string_to_metric_families(text)
            if family.name == "apollo_kubernetes_api_calls"
            for s in family.samples
            if s.name.endswith("_total") and s.labels["verb"] == "connect"
        )
    }


async def gauges() -> dict[str, float]:
    return await sync_to_async(_gauges)()


def _first_pod(environment: Environment) -> str:
    try:
        items, _ = kube.list_objects(
            environment.cluster,
            "Pod",
            environment.namespace,
            label_selector="apollo.io/service=web",
        )
    finally:
        connection.close()  # this thread's (PostgreSQL drops the test database at the end)
    return str(sorted(i["metadata"]["name"] for i in items)[0])


async def test_the_gauges_count_open_tails_and_shells(
    alice: User, mallory: User, staging: Environment, settings: Any
) -> None:
    settings.APOLLO_METRICS_TOKEN = TOKEN
    await sync_to_async(deployed)(alice, staging, "web", replicas=1)
    pod = await asyncio.to_thread(_first_pod, staging)
    before = await gauges()

    tail = await communicator(f"/ws/environments/{staging.name}/logs/?service=web", alice)
    assert (await tail.connect(timeout=10))[0]
    shell = await communicator(f"/ws/environments/{staging.name}/pods/{pod}/shell/", alice)
    assert (await shell.connect(timeout=10))[0]
    await receive_until(shell, lambda m: m["type"] == "started")
    refused = await connect_code(f"/ws/environments/{staging.name}/logs/?service=web", mallory)
    assert refused == (False, 4403)
    during = await gauges()
    assert during["apollo_live_tails_open"] == before["apollo_live_tails_open"] + 1
    assert during["apollo_shells_open"] == before["apollo_shells_open"] + 1
    assert during["connect_calls"] == before["connect_calls"] + 1  # the exec handshake

    await tail.disconnect()
    await shell.disconnect()
    after = await gauges()
    assert after["apollo_live_tails_open"] == before["apollo_live_tails_open"]
    assert after["apollo_shells_open"] == before["apollo_shells_open"]
    await sync_to_async(connections.close_all)()
