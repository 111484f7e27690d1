"""Helpers for the environment sockets: Apollo's real ASGI app, origin header, session cookie,
and a service deployed to kubesim through the real worker."""

from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from apollo_site.asgi import application
from deployments.models import Service
from deployments.status import Status
from environments.models import Environment
from tests import factories
from tests.kubeenv import deploy, wait_until_terminal

ORIGIN = (b"origin", b"http://127.0.0.1")


def session_cookie(user: User) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())


async def communicator(path: str, user: User | None = None) -> WebsocketCommunicator:
    headers = [(b"host", b"127.0.0.1"), ORIGIN]
    if user is not None:
        headers.append(await sync_to_async(session_cookie)(user))
    return WebsocketCommunicator(application, path, headers=headers)


async def connect_code(path: str, user: User | None = None) -> tuple[bool, Any]:
    socket = await communicator(path, user)
    connected, code = await socket.connect(timeout=10)
    await socket.disconnect()
    return connected, code


def deployed(
    user: User, environment: Environment, name: str = "web", replicas: int = 2, **extra: Any
) -> Service:
    """A service running in the environment (deployed by `user` through the worker)."""
    service = factories.make_service(name, default_variables={"replicas": replicas}, **extra)
    version = factories.make_version(service, commit_message=f"Release {name}\n\nbody")
    outcome = deploy(user, service, environment, version, message="test")
    assert outcome.deployment is not None, outcome.reason
    deployment = wait_until_terminal(outcome.deployment)
    assert deployment.status == Status.DONE, deployment.status_reason
    return service


async def receive_until(socket: WebsocketCommunicator, check: Any, timeout: float = 30) -> Any:
    """The first JSON message for which check(message) is true."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no matching message in time")
        try:
            message = await socket.receive_json_from(timeout=left)
        except TimeoutError:
            raise AssertionError("no matching message in time") from None
        if check(message):
            return message
