"""A real HTTP receiver for webhook tests: an aiohttp server on its own thread and loop."""

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    # Answers to give, in order; once empty every request gets 200.
    answers: list[int] = field(default_factory=list)
    redirect_to: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextmanager
def running(receiver: Receiver | None = None) -> Iterator[Receiver]:
    """Serve (again) on receiver.port, or on a new port; stop on exit."""
    if receiver is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            receiver = Receiver(port=s.getsockname()[1])
    rec = receiver
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        rec.received.append(Received(dict(request.headers), body))
        if rec.redirect_to:
            raise web.HTTPFound(rec.redirect_to)
        status = rec.answers.pop(0) if rec.answers else 200
        return web.Response(status=status, text="ok")

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", rec.port, reuse_address=True)
        await site.start()
        started.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30), "the receiver did not start"
    try:
        yield rec
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
