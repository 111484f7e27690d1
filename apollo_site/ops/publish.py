"""Live updates are best effort: one publisher for every channel-layer send.

The channel layer (Redis in production) only carries live updates to open pages; the database
is the record, and every page reads it again when its socket (re)connects. So a publish must
never fail, delay or cancel what asked for it (a deployment's rollout, a POST, a cancel):

1. Every send has a short deadline (PUBLISH_TIMEOUT_SECONDS); an error or a timeout is
   swallowed: the update is dropped, and the caller carries on.
2. The first failure is logged once as a warning (which group, why); further failures while
   the layer stays down are not logged again, and the next success is logged once.
3. After a failure, sends are skipped for PAUSE_SECONDS without trying (a Redis that hangs
   would otherwise cost every publish its full deadline); then the next send tries again.

Call it outside transactions (``transaction.on_commit``), as every side effect.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 2.0
PAUSE_SECONDS = 5.0


class _Breaker:
    """Whether the layer is known down (thread-safe: workers and watchers publish in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0

    def allows(self) -> bool:
        with self._lock:
            return not self._down or time.monotonic() >= self._retry_at

    def failed(self, group: str, exc: BaseException) -> None:
        with self._lock:
            first = not self._down
            self._down, self._retry_at = True, time.monotonic() + PAUSE_SECONDS
        if first:
            log.warning(
                "live updates are off (sending to %s failed: %s); pages catch up from the "
                "database when they reconnect",
                group,
                _describe(exc),
            )

    def succeeded(self) -> None:
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            log.warning("live updates are back on")

    def reset(self) -> None:
        """Forget a past failure (tests)."""
        with self._lock:
            self._down, self._retry_at = False, 0.0


breaker = _Breaker()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {PUBLISH_TIMEOUT_SECONDS:g} s"
    return f"{type(exc).__name__}: {exc}"[:300]


async def _send(group: str, message: dict[str, Any]) -> None:
    layer: Any = get_channel_layer()
    if layer is not None:
        await asyncio.wait_for(layer.group_send(group, message), PUBLISH_TIMEOUT_SECONDS)


async def _send_all(group: str, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        await _send(group, message)


def publish(group: str, message: dict[str, Any]) -> bool:
    """Send ``message`` to the channel-layer ``group`` from sync code (a worker, a view's
    on_commit). True when it was sent; False when it was dropped. Never raises."""
    return publish_many(group, [message])


def publish_many(group: str, messages: list[dict[str, Any]]) -> bool:
    """Send ``messages`` to ``group`` in order, in one round from sync code (async_to_sync
    starts an event loop and a thread per call: 0.3 ms of CPU each, three times a worker's
    verdict otherwise). Each send has its own deadline; after a failure the rest are dropped
    (the page reads the database when it reconnects). True when all were sent. Never raises."""
    if not messages or not breaker.allows():
        return not messages
    try:
        async_to_sync(_send_all)(group, messages)
    except Exception as exc:
        breaker.failed(group, exc)
        return False
    breaker.succeeded()
    return True


def publish_on(loop: asyncio.AbstractEventLoop, group: str, message: dict[str, Any]) -> bool:
    """The same, from a thread, on the event loop whose consumers listen (the in-memory layer
    reaches only consumers of its own loop). False also when that loop is gone."""
    if not breaker.allows():
        return False
    send: Coroutine[Any, Any, None] = _send(group, message)
    try:
        future = asyncio.run_coroutine_threadsafe(send, loop)
    except RuntimeError:  # the loop is closed: nobody listens there any more
        send.close()
        return False
    try:
        # The send's own deadline bounds this wait; the margin covers a busy loop.
        future.result(timeout=PUBLISH_TIMEOUT_SECONDS + 4)
    except Exception as exc:
        future.cancel()
        breaker.failed(group, exc)
        return False
    breaker.succeeded()
    return True
