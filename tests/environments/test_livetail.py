"""LiveTail over its socket: refusals per persona, batches from every pod, pause with a bounded
buffer, and following the replacement of a restarted pod."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from environments import kube
from environments.live import logs
from environments.models import Environment
from tests.environments.sockets import communicator, connect_code, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _pods(environment: Environment, service: str) -> list[str]:
    items, _ = kube.list_objects(
        environment.cluster,
        "Pod",
        environment.namespace,
        label_selector=f"apollo.io/service={service}",
    )
    return sorted(
        i["metadata"]["name"] for i in items if not i["metadata"].get("deletionTimestamp")
    )


def _logs(environment: Environment, query: str) -> str:
    return f"/ws/environments/{environment.name}/logs/?{query}"


async def test_an_anonymous_tail_is_refused(staging: Environment) -> None:
    assert await connect_code(_logs(staging, "service=web")) == (False, 4401)


@pytest.mark.parametrize(
    ("persona", "allowed"), [("alice", True), ("bob", True), ("carol", True), ("mallory", False)]
)
async def test_only_personas_with_view_logs_may_tail(
    personas: dict[str, User], persona: str, allowed: bool, staging: Environment
) -> None:
    await sync_to_async(deployed)(personas["alice"], staging, "web", replicas=1)
    pod = (await asyncio.to_thread(_pods, staging, "web"))[0]
    for query in ("service=web", f"pod={pod}"):
        connected, code = await connect_code(_logs(staging, query), personas[persona])
        assert connected is allowed, query
        if not allowed:
            assert code == 4403


async def test_bob_is_refused_in_production(bob: User, staging: Environment) -> None:
    await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    staging.availability = "production"
    await sync_to_async(staging.save)()
    assert await connect_code(_logs(staging, "service=web"), bob) == (False, 4403)


async def test_all_pods_of_a_service_arrive_merged_in_batches(
    bob: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(bob, staging, "web", replicas=2)
    pods = await asyncio.to_thread(_pods, staging, "web")
    socket = await communicator(_logs(staging, "service=web&tail=5"), bob)
    assert (await socket.connect(timeout=10))[0]
    seen: set[str] = set()
    sizes = []

    def collect(message: dict[str, object]) -> bool:
        if message.get("type") == "lines":
            batch = message["lines"]
            assert isinstance(batch, list)
            sizes.append(len(batch))
            seen.update(pod for pod, _, _ in batch)
        return seen >= set(pods)

    await receive_until(socket, collect)
    assert max(sizes) > 1  # lines come in batches, not one message per line
    await socket.disconnect()


async def test_a_paused_tail_keeps_a_bounded_buffer_and_reports_dropped_lines(
    bob: User, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "BUFFER_LINES", 5)
    await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    socket = await communicator(_logs(staging, "service=web&tail=0"), bob)
    assert (await socket.connect(timeout=10))[0]
    await receive_until(socket, lambda m: m.get("type") == "lines" and m["lines"])
    await socket.send_json_to({"action": "pause"})
    await asyncio.sleep(1.5)  # kubesim writes 20 lines a second in tests
    while not await socket.receive_nothing(timeout=0.2):
        await socket.receive_json_from()
    await socket.send_json_to({"action": "resume"})
    resumed = await receive_until(socket, lambda m: m.get("type") == "lines" and m["dropped"])
    assert resumed["dropped"] > 0
    assert len(resumed["lines"]) <= 5
    await socket.disconnect()


async def test_a_followed_pod_that_is_restarted_is_followed_in_its_replacement(
    bob: User, staging: Environment
) -> None:
    await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    [pod] = await asyncio.to_thread(_pods, staging, "web")
    socket = await communicator(_logs(staging, f"pod={pod}&tail=1"), bob)
    assert (await socket.connect(timeout=10))[0]
    await receive_until(socket, lambda m: m.get("type") == "lines" and m["lines"])
    await asyncio.to_thread(kube.delete_pod, staging.cluster, staging.namespace, pod)

    def from_new_pod(message: dict[str, object]) -> bool:
        batch = message.get("lines") or []
        assert isinstance(batch, list)
        return any(name != pod for name, _, _ in batch)

    message = await receive_until(socket, from_new_pod, timeout=20)
    new = {name for name, _, _ in message["lines"]} - {pod}
    assert new
    assert all(name.startswith("web-") for name in new)
    await socket.disconnect()


async def test_the_previous_container_log_is_read_once(bob: User, staging: Environment) -> None:
    await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    [pod] = await asyncio.to_thread(_pods, staging, "web")
    socket = await communicator(_logs(staging, f"pod={pod}&previous=1"), bob)
    assert (await socket.connect(timeout=10))[0]
    # A container that never restarted has no previous log: the notice says so.
    message = await receive_until(socket, lambda m: m.get("notices"))
    assert "previous terminated container" in message["notices"][0]
    await socket.disconnect()
