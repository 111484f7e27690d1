"""Cross-site websocket hijacking: channels' AllowedHostsOriginValidator compared host names
only, so a page on http://127.0.0.1:9999 (another port: another origin, another program) or
https://127.0.0.1 opened the shell socket of a page served on http://127.0.0.1. Now the
origin must be the socket's own (scheme, host and port) or one of CSRF_TRUSTED_ORIGINS, on
every socket route (apollo_site/websockets.py states the rule)."""

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from apollo_site.asgi import application
from tests.environments.sockets import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

# Every socket route, for objects that do not exist: an allowed origin reaches the route,
# which answers 4404; a refused one is closed by the origin check without a code.
ROUTES = [
    "/ws/environments/nope/status/",
    "/ws/environments/nope/logs/?service=web",
    "/ws/environments/nope/pods/web-1/shell/",
    "/ws/deployments/999999/",
    f"/ws/deployments/batch/{uuid.UUID(int=1)}/",
    "/ws/unknown/",
]
REFUSED = [
    ("127.0.0.1", "http://127.0.0.1:9999", "ws"),  # another port
    ("127.0.0.1", "https://127.0.0.1", "ws"),  # another scheme
    ("127.0.0.1:8000", "http://127.0.0.1", "ws"),  # the page's port differs from the socket's
    ("127.0.0.1:8000", "http://127.0.0.1:8001", "ws"),
    ("127.0.0.1", "http://evil.example", "ws"),  # another host
    ("127.0.0.1", "http://127.0.0.1.evil.example", "ws"),
    ("127.0.0.1", "null", "ws"),  # a sandboxed page
    ("127.0.0.1", None, "ws"),  # no Origin: not a browser, and only browsers use these sockets
    ("evil.example", "http://evil.example", "ws"),  # a Host outside ALLOWED_HOSTS
    ("127.0.0.1", "http://127.0.0.1", "wss"),  # a page on http for a socket on wss
    ("127.0.0.1:443", "http://127.0.0.1:443", "wss"),
]
ALLOWED = [
    ("127.0.0.1", "http://127.0.0.1", "ws"),
    ("127.0.0.1:80", "http://127.0.0.1", "ws"),  # the default port, written or not
    ("127.0.0.1:8000", "http://127.0.0.1:8000", "ws"),
    ("localhost:8000", "http://LOCALHOST:8000", "ws"),
    ("127.0.0.1", "https://127.0.0.1", "wss"),
    ("[::1]:8000", "http://[::1]:8000", "ws"),
]


async def _first_answer(
    path: str,
    user: User,
    host: str,
    origin: str | None,
    scheme: str,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> dict[str, Any]:
    headers = [(b"host", host.encode()), await sync_to_async(session_cookie)(user), *extra]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    socket = WebsocketCommunicator(application, path, headers=headers)
    socket.scope["scheme"] = scheme
    await socket.send_input({"type": "websocket.connect"})
    message: dict[str, Any] = await socket.receive_output(timeout=10)
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    await socket.wait(timeout=10)
    return message


@pytest.mark.parametrize(("host", "origin", "scheme"), REFUSED)
async def test_a_foreign_origin_is_refused_on_every_socket_route(
    alice: User, host: str, origin: str | None, scheme: str
) -> None:
    for path in ROUTES:
        message = await _first_answer(path, alice, host, origin, scheme)
        assert message == {"type": "websocket.close"}, (path, origin)


@pytest.mark.parametrize(("host", "origin", "scheme"), ALLOWED)
async def test_the_sockets_own_origin_reaches_the_route(
    alice: User, host: str, origin: str, scheme: str
) -> None:
    for path in ROUTES:
        message = await _first_answer(path, alice, host, origin, scheme)
        assert message["type"] == "websocket.close", path
        assert message.get("code") == 4404, (path, origin)


async def test_a_csrf_trusted_origin_reaches_the_route(alice: User, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["apollo.internal"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://apollo.example.com", "https://*.example.org"]
    for origin in ("https://apollo.example.com", "https://ops.example.org"):
        message = await _first_answer(ROUTES[0], alice, "apollo.internal", origin, "ws")
        assert message.get("code") == 4404, origin
    for origin in (
        "http://apollo.example.com",
        "https://apollo.example.com:8443",
        "https://example.org.evil.example",
    ):
        message = await _first_answer(ROUTES[0], alice, "apollo.internal", origin, "ws")
        assert message == {"type": "websocket.close"}, origin


async def test_behind_a_trusted_tls_proxy_the_forwarded_scheme_decides(
    alice: User, settings: Any
) -> None:
    forwarded = ((b"x-forwarded-proto", b"https"),)
    route = ROUTES[0]
    # Not trusted (the default): the header is ignored, the connection's ws is http.
    message = await _first_answer(route, alice, "127.0.0.1", "https://127.0.0.1", "ws", forwarded)
    assert message == {"type": "websocket.close"}
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    message = await _first_answer(route, alice, "127.0.0.1", "https://127.0.0.1", "ws", forwarded)
    assert message.get("code") == 4404
    message = await _first_answer(route, alice, "127.0.0.1", "http://127.0.0.1", "ws", forwarded)
    assert message == {"type": "websocket.close"}
