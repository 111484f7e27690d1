"""The websocket edge: which pages may open Apollo's sockets, and what an unknown path gets.

THE ORIGIN RULE (cross-site websocket hijacking; the same rule Django's CSRF check applies to
an HTTPS form post, with the port and scheme compared exactly):

1. The handshake must carry an ``Origin`` header. Every Apollo socket is opened by Apollo's
   own pages in a browser, and browsers always send one; a handshake without it (or with
   ``null``, a sandboxed or file page) is refused.
2. The ``Host`` header must be one of ``ALLOWED_HOSTS`` (as for every HTTP request).
3. The origin is accepted when it is the socket's own origin: the scheme of the connection
   (``ws`` pairs with ``http``, ``wss`` with ``https``; behind a TLS proxy, the header named
   by ``SECURE_PROXY_SSL_HEADER`` decides, as it does for Django's ``request.scheme``, when
   ``APOLLO_TRUST_X_FORWARDED_PROTO`` sets it), the Host header's host and its port (a missing
   port is the scheme's default, 80 or 443);
4. or when it is one of ``CSRF_TRUSTED_ORIGINS`` (``scheme://host[:port]``, exactly; a
   ``*.example.com`` host there covers its subdomains, as Django's CSRF check reads it).

Anything else is refused before the application sees it: another port
(``http://127.0.0.1:9999`` for a page served on ``http://127.0.0.1``), another scheme
(``https://127.0.0.1``), another host. A refused handshake is closed without being accepted.
"""

import asyncio
import contextlib
import os
import signal
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from redis.exceptions import TimeoutError as RedisTimeoutError

Origin = tuple[str, str, int]  # (scheme, host, port)
DEFAULT_PORTS = {"http": 80, "https": 443}
DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]  # Django's own default under DEBUG
# The server is stopping: reconnect (to another replica). Apollo's close codes mirror HTTP's
# statuses (4401, 4403, 4404); daphne's websocket library lets an application send only 1000
# and 3000-4999, so the registry's 1012 "service restart" cannot be sent.
CLOSE_RESTARTING = 4503


def parse_origin(value: str) -> Origin | None:
    """(scheme, host, port) of an origin such as ``https://apollo.example:8443``, or None."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username is not None:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def _scheme(scope: dict[str, Any], headers: dict[bytes, bytes]) -> str:
    """http or https: the connection's, or the trusted proxy header's (as request.scheme)."""
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, secure = proxy
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin1")
        if header in headers:
            sent = headers[header].decode("latin1").split(",", 1)[0].strip()
            return "https" if sent == secure else "http"
    return "https" if scope.get("scheme") in ("wss", "https") else "http"


def own_origin(scope: dict[str, Any], headers: dict[bytes, bytes]) -> Origin | None:
    """The origin of the page that may open this socket: the connection's scheme, the Host
    header's host and port; None when the Host is not one of ALLOWED_HOSTS."""
    domain, port = split_domain_port(headers.get(b"host", b"").decode("latin1"))
    allowed = settings.ALLOWED_HOSTS or (DEBUG_HOSTS if settings.DEBUG else [])
    if not domain or not validate_host(domain, allowed):
        return None
    scheme = _scheme(scope, headers)
    if port and not port.isdigit():
        return None
    return scheme, domain.strip("[]"), int(port) if port else DEFAULT_PORTS[scheme]


def _trusted(origin: Origin) -> bool:
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        scheme, _, rest = entry.partition("://")
        wildcard = rest.startswith("*.")
        trusted = parse_origin(f"{scheme}://{rest[2:] if wildcard else rest}")
        if trusted is None or (trusted[0], trusted[2]) != (origin[0], origin[2]):
            continue
        if origin[1] == trusted[1] or (wildcard and origin[1].endswith("." + trusted[1])):
            return True
    return False


def origin_allowed(scope: dict[str, Any]) -> bool:
    """The rule of this module's docstring, for one websocket handshake scope."""
    headers = dict(scope.get("headers", []))
    raw_origin, raw_host = headers.get(b"origin"), headers.get(b"host")
    if raw_origin is None or raw_host is None:
        return False
    origin = parse_origin(raw_origin.decode("latin1"))
    if origin is None:
        return False
    return origin == own_origin(scope, headers) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware: a websocket handshake whose origin is not allowed is refused."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.application(scope, receive, send)
        application = self.application
        if not origin_allowed(scope):
            # SECURITY: closed before the session or any route is looked at.
            application = WebsocketDenier()
        ended = False
        socket = _OpenSocket(send)

        async def receive_noting_the_end() -> Any:
            nonlocal ended
            message = await receive()
            ended = ended or message.get("type") == "websocket.disconnect"
            return message

        async def send_noting_the_state(message: dict[str, Any]) -> None:
            if message.get("type") == "websocket.accept":
                _shutdown.watch(socket)
            await send(message)

        try:
            return await application(scope, receive_noting_the_end, send_noting_the_state)
        except RedisTimeoutError:
            # When a socket ends, channels cancels the consumer's pending channel-layer
            # receive; redis-py (8.1) answers a cancel that lands while it sets up its read with
            # TimeoutError instead of CancelledError. The socket is over and nothing was lost;
            # a timeout while the socket is still open is a real error and is raised.
            if not ended:
                raise
            return None
        finally:
            _shutdown.forget(socket)


class _OpenSocket:
    def __init__(self, send: Any) -> None:
        self.send = send
        self.ended = asyncio.Event()


class _Shutdown:
    """SIGTERM closes every open socket with 4503 (Apollo is restarting) before the server stops.

    Daphne (Twisted) drops its connections on SIGTERM without a close frame, and the pages saw
    an abnormal closure. The first accepted socket installs this handler in front of the
    server's own (which is installed when the server starts, after this module is imported):
    it sends the close frames, waits up to CLOSE_GRACE_SECONDS for the browsers to answer
    them, then calls the server's handler. Pages reconnect on 4503, through another replica.
    """

    CLOSE_GRACE_SECONDS = 2.0

    def __init__(self) -> None:
        self.sockets: set[_OpenSocket] = set()
        self.installed = False

    def watch(self, socket: _OpenSocket) -> None:
        self.sockets.add(socket)
        if not self.installed and _served_by_twisted():
            self.installed = True
            loop = asyncio.get_running_loop()
            previous = signal.getsignal(signal.SIGTERM)

            def on_sigterm(signum: int, frame: Any) -> None:
                try:
                    loop.call_soon_threadsafe(
                        lambda: loop.create_task(self._close_all_then(previous, signum, frame))
                    )
                except RuntimeError:  # the loop is gone: stop at once
                    self._stop(previous, signum, frame)

            signal.signal(signal.SIGTERM, on_sigterm)

    def forget(self, socket: _OpenSocket) -> None:
        socket.ended.set()
        self.sockets.discard(socket)

    async def _close_all_then(self, previous: Any, signum: int, frame: Any) -> None:
        sockets = list(self.sockets)
        for socket in sockets:
            with contextlib.suppress(Exception):
                await socket.send({"type": "websocket.close", "code": CLOSE_RESTARTING})
        if sockets:
            await asyncio.wait(
                [asyncio.ensure_future(s.ended.wait()) for s in sockets],
                timeout=self.CLOSE_GRACE_SECONDS,
            )
        self._stop(previous, signum, frame)

    @staticmethod
    def _stop(previous: Any, signum: int, frame: Any) -> None:
        if callable(previous):
            previous(signum, frame)
        else:  # the default action: end the process
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


def _served_by_twisted() -> bool:
    """Whether daphne's reactor runs this process (in the main thread, where signals land);
    not under the tests' in-process communicators."""
    reactor = sys.modules.get("twisted.internet.reactor")
    running = bool(getattr(reactor, "running", False))
    return running and threading.current_thread() is threading.main_thread()


_shutdown = _Shutdown()


class UnknownRouteConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """The last route: a path no consumer serves is closed cleanly (4404), not an exception
    in the server's log."""

    async def connect(self) -> None:
        await self.close(code=4404, reason="no websocket at this path")
