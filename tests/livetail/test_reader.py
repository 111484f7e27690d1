"""LiveTail's streams are read by one thread of the process, not a thread per followed pod:
what that thread must still do (resume a stream the cluster ended without a gap or a repeated
line, decode any split of the chunked body) and that open tails leave no thread of their own."""

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from environments import kube
from environments.kube import pods
from environments.kube.pods import _ChunkedBody
from environments.live.watcher import wait_for
from environments.models import Environment
from kubesim.testing import KubesimHandle
from tests.environments.sockets import communicator, deployed, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _path(environment: Environment, query: str) -> str:
    return f"/ws/environments/{environment.name}/logs/?{query}"


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


def _full_log(environment: Environment, pod: str) -> list[str]:
    text = kube.LogStream(
        environment.cluster,
        environment.namespace,
        pod,
        container=None,
        tail_lines=None,
        follow=False,
    )
    return list(text.lines())


async def _open(path: str, user: User) -> WebsocketCommunicator:
    socket = await communicator(path, user)
    assert (await socket.connect(timeout=10))[0]
    return socket


async def _lines_until(socket: WebsocketCommunicator, done: Any) -> list[list[str]]:
    lines: list[list[str]] = []

    def check(message: dict[str, Any]) -> bool:
        if message.get("type") == "lines":
            lines.extend(message["lines"])
        return bool(done(lines))

    await receive_until(socket, check, timeout=30)
    return lines


@pytest.mark.kubesim_only  # ends the server's streams through kubesim's control API
async def test_a_stream_the_cluster_ends_is_resumed_without_a_gap_or_a_repeated_line(
    bob: User, staging: Environment, kubesim: KubesimHandle
) -> None:
    await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    [pod] = await asyncio.to_thread(_pods, staging, "web")
    socket = await _open(_path(staging, f"pod={pod}&tail=5"), bob)
    before = await _lines_until(socket, lambda lines: len(lines) >= 10)
    await asyncio.to_thread(kubesim.end_watches)  # log streams end with the watches
    # kubesim writes 20 lines a second in tests: 40 more lines span the resumption.
    after = await _lines_until(socket, lambda lines: len(lines) >= 40)
    await socket.disconnect()
    received = [f"{stamp} {text}" for _, stamp, text in before + after]
    log = await asyncio.to_thread(_full_log, staging, pod)
    start = log.index(received[0])
    assert received == log[start : start + len(received)]


async def test_open_tails_leave_no_thread_of_their_own(bob: User, staging: Environment) -> None:
    await sync_to_async(deployed)(bob, staging, "web", replicas=2)
    pods = set(await asyncio.to_thread(_pods, staging, "web"))
    sockets = [await _open(_path(staging, "service=web&tail=1"), bob) for _ in range(3)]
    for socket in sockets:  # each tail reads both pods
        await _lines_until(socket, lambda lines: {pod for pod, _, _ in lines} >= pods)

    def threads(name: str) -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == name and t.is_alive()]

    # Six followed logs: the threads that opened them are gone; one reader reads them all.
    assert await asyncio.to_thread(wait_for, lambda: not threads("log-open"), 30)
    assert len(threads("log-reader")) == 1
    more = await _lines_until(sockets[0], lambda lines: len(lines) >= 5)
    assert more
    for socket in sockets:
        await socket.disconnect()


BODY = (
    b"1b\r\n2026-01-01T00:00:00Z first\n\r\n"
    b"2c;ext=1\r\n2026-01-01T00:00:01Z second\n2026-01-01T00:00\r\n"
    b"d\r\n:02Z third\nfo\r\n"
    b"0\r\n\r\n"
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(BODY)])
def test_a_chunked_body_split_anywhere_decodes_to_the_same_lines(size: int) -> None:
    body = _ChunkedBody(chunked=True)
    lines: list[str] = []
    ended = False
    for at in range(0, len(BODY), size):
        more, done = body.feed(BODY[at : at + size])
        lines += more
        ended = ended or done
    assert ended
    assert [*lines, *body.rest()] == [
        "2026-01-01T00:00:00Z first",
        "2026-01-01T00:00:01Z second",
        "2026-01-01T00:00:02Z third",
        "fo",
    ]


def test_a_plain_body_is_read_until_the_connection_ends() -> None:
    body = _ChunkedBody(chunked=False)
    assert body.feed(b"a\nb") == (["a"], False)
    assert body.feed(b"c\n") == (["bc"], False)
    assert body.rest() == []


@pytest.mark.kubesim_only  # a pod that writes nothing after it started (kubesim's log_rate)
async def test_a_stream_quiet_past_the_read_timeout_is_ended_and_resumed(
    bob: User, staging: Environment, kubesim: KubesimHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A connection that died without a word looks like a quiet log: the reader ends a stream
    # that sent nothing for FOLLOW_READ_TIMEOUT (the client's read timeout did it before),
    # says so, and follows the pod again.
    monkeypatch.setattr(pods, "FOLLOW_READ_TIMEOUT", 1)
    monkeypatch.setattr(pods, "_QUIET_CHECK_SECONDS", 0.2)
    with kubesim.settings(log_rate=0.0):
        await sync_to_async(deployed)(bob, staging, "web", replicas=1)
    [pod] = await asyncio.to_thread(_pods, staging, "web")
    socket = await _open(_path(staging, f"pod={pod}&tail=100"), bob)
    notices: list[str] = []
    lines: list[list[str]] = []

    def resumed(message: dict[str, Any]) -> bool:
        lines.extend(message.get("lines") or [])
        notices.extend(message.get("notices") or [])
        interrupted = [n for n in notices if "no log line for 1 s" in n]
        return len(interrupted) >= 2  # ended, resumed, and ended again: it follows still

    await receive_until(socket, resumed)
    await socket.disconnect()
    texts = [text for _, _, text in lines]
    assert texts  # the head lines,
    assert len(texts) == len(set(texts))  # never repeated
