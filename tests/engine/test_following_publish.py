"""What the following thread writes reaches the live page after the write, one round through
the channel layer per rollout, with no rollout's lock held (#16, following.py): a verdict decided
meanwhile waits for no publish before its UPDATE; the verdict's entries and status follow the
entries written before them."""

import asyncio
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer
from django.contrib.auth.models import User

from deployments import live
from deployments.engine import following
from deployments.engine.following import Followed
from tests import factories

# What the layer saw: (group, its round (the event loop it came on), the rollout's lock free).
SENT: list[tuple[str, object, bool]] = []
MESSAGES: list[tuple[str, dict[str, Any]]] = []
BOOKS: dict[str, Followed] = {}


class RecordingLayer(InMemoryChannelLayer):  # type: ignore[misc]  # (channels is untyped)
    """The in-memory layer, noting for each send its round (the event loop async_to_sync ran
    it on) and whether the rollout's write_lock was free then (the loop has its own thread)."""

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        book = BOOKS[group]
        free = book.write_lock.acquire(blocking=False)
        if free:
            book.write_lock.release()
        SENT.append((group, asyncio.get_running_loop(), free))
        MESSAGES.append((group, message))
        await super().group_send(group, message)


@pytest.fixture
def recording(settings: Any) -> None:
    SENT.clear()
    MESSAGES.clear()
    BOOKS.clear()
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.engine.test_following_publish.RecordingLayer"}
    }


def _entry(message: str) -> dict[str, str]:
    return {"at": "2026-11-30T23:00:00+00:00", "source": "pod", "message": message}


@pytest.mark.django_db
@pytest.mark.parametrize("rollouts", [1, 20])
def test_each_rollout_s_written_entries_go_out_in_one_round_with_no_lock_held(
    alice: User, recording: None, rollouts: int
) -> None:
    books = [
        Followed(deployment, joined=True)
        for deployment in factories.make_started_deployments(alice, rollouts)
    ]
    for index, book in enumerate(books):
        BOOKS[live.group_name(book.deployment.pk)] = book
        book.add([_entry(f"web-{index}: Pending"), _entry(f"web-{index}: Running")])
    following.write_timelines(books)
    assert len(SENT) == 2 * rollouts
    assert all(free for _, _, free in SENT), "a publish was sent with a rollout's lock held"
    rounds = {(group, id(task)) for group, task, _ in SENT}
    assert len(rounds) == rollouts  # one round per rollout, not one per entry
    assert all(book.unsent == [] for book in books)


@pytest.mark.django_db
def test_a_verdict_s_entries_and_status_follow_those_written_before_them(
    alice: User, recording: None
) -> None:
    (deployment,) = factories.make_started_deployments(alice, 1)
    book = Followed(deployment, joined=True)
    BOOKS[live.group_name(deployment.pk)] = book
    # The following thread wrote an entry and has not sent it yet (between its UPDATE and
    # its send) when the verdict is written and sent.
    book.add([_entry("web-1: Running, ready")])
    assert following._write_timelines([book]) == [book]
    with book.write_lock:
        book.written([_entry("DONE: rollout complete")])  # (as Run.finish, after its commit)
    book.send(status=True)
    book.send()  # the following thread's send: nothing left
    payloads = [message["payload"] for _, message in MESSAGES]
    assert [p.get("message") for p in payloads[:2]] == [
        "web-1: Running, ready",
        "DONE: rollout complete",
    ]
    assert [p["type"] for p in payloads] == [
        "deployment.timeline",
        "deployment.timeline",
        "deployment.status",
    ]
    assert len({id(task) for _, task, _ in SENT}) == 1  # one round
