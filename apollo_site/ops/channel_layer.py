"""The Redis channel layer, with a receive that ends when it is cancelled.

When a socket ends, channels cancels its consumer's pending ``receive`` and waits for it. A
cancel that lands while redis-py sets up the blocking pop is swallowed (redis-py 8.1): the
receive carries on, and the socket's application lived until the server killed it
(daphne's 10 s application_close_timeout; each closed socket of the tests waited 5 to 10 s).
Here the receive runs as an inner task: a cancel of the caller returns at once, and the inner
task is cancelled again until it stops (a message it still takes belongs to a socket that is
closing, and is dropped).
"""

import asyncio
from typing import Any

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer

RECANCEL_SECONDS = 0.5

_reaping: set["asyncio.Task[Any]"] = set()  # references, so the reapers are not collected


async def _cancel_until_done(task: "asyncio.Future[Any]") -> None:
    while not task.done():
        task.cancel()
        try:
            await asyncio.wait([task], timeout=RECANCEL_SECONDS)
        except asyncio.CancelledError:
            # The reaper itself is cancelled when its event loop closes (asyncio.run, a test's
            # loop): it carries on until the receive has ended, or the loop's close would wait
            # forever for a receive whose one cancel redis-py swallowed.
            continue


def _forget_result(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a receive that failed while nobody waited is no error


class RedisChannelLayer(BaseRedisChannelLayer):  # type: ignore[misc]
    async def receive(self, channel: str) -> Any:
        inner = asyncio.ensure_future(super().receive(channel))
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            inner.add_done_callback(_forget_result)
            if not inner.done():
                reaper = asyncio.ensure_future(_cancel_until_done(inner))
                _reaping.add(reaper)
                reaper.add_done_callback(_reaping.discard)
            raise
