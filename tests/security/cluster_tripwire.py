"""A cluster that counts every connection made to it: a test proves that Kubernetes was never
asked by finding the count still at zero. Its API server is a plain TCP listener that accepts
and hangs up, so a client that does reach it fails (and is counted)."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from environments.models import Cluster, Environment
from tests import factories
from tests.environments.sockets import communicator


@dataclass
class Tripwire:
    port: int
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@contextmanager
def tripwire() -> Iterator[Tripwire]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    wire = Tripwire(port=listener.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with wire._lock:
                wire.connections += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield wire
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def tripwire_environment(wire: Tripwire, *, name: str, availability: str) -> Environment:
    """An environment whose cluster is the tripwire (token kind, with a token to leak)."""
    cluster = Cluster(
        name=f"tripwire-{name}", connection=Cluster.Connection.TOKEN, api_url=wire.url
    )
    cluster.set_token("tripwire-token-must-never-be-shown")
    cluster.save()
    return factories.make_environment(name, cluster=cluster, availability=availability)


async def close_of(path: str, user: User | None) -> dict[str, object]:
    """The server's first answer to a websocket connect: accept, or close with code/reason."""
    socket_: WebsocketCommunicator = await communicator(path, user)
    await socket_.send_input({"type": "websocket.connect"})
    message: dict[str, object] = await socket_.receive_output(timeout=10)
    await socket_.send_input({"type": "websocket.disconnect", "code": 1000})
    await socket_.wait(timeout=10)
    return message
