"""Waking the workers when there is new work, instead of waiting for their next poll.

A new deployment calls ``notify_new_work`` after its commit; idle workers wait in
``WorkSignal.wait``, which returns as soon as a wake-up arrives. One transport, chosen from
the settings, so that every process of an installation agrees:

1. PostgreSQL: NOTIFY on commit, each worker LISTENs on a connection of its own.
2. Otherwise with Redis (``REDIS_URL``): PUBLISH on a channel, each worker SUBSCRIBEs. Redis
   is already what several Apollo processes share; it reaches workers on other machines.
3. Otherwise (SQLite, no Redis: every process is on this machine, since they share the
   database file): a Unix datagram socket per idle worker under ``VAR_DIR/wakeup/``, and the
   notifier sends one empty datagram to each. Chosen over a FIFO because a datagram socket
   has one reader per file (a FIFO's one message wakes one reader of many) and a sender
   learns that a worker is gone (connection refused: its stale file is removed); it needs no
   server of its own.

A wake-up carries no data (workers read the work from the database), so a lost or spurious
one costs nothing but a poll: polling (``rundeployments --poll-interval``) stays as the safety
net. Each worker subscribes *before* it looks for work, so a deployment committed between its
look and its wait still wakes it. Notifying never raises and never waits long: the request
that created the deployment has committed already.
"""

import contextlib
import logging
import os
import select
import socket
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)
CHANNEL = "apollo_deployments"
SLICE_SECONDS = 0.5  # the longest a wait goes without looking at the shutdown event
REDIS_TIMEOUT_SECONDS = 0.25  # a publish on the request path: short, then polling covers
REDIS_PAUSE_SECONDS = 5.0  # after a failed publish, skip Redis this long (it is down)


def transport() -> str:
    """ "postgresql", "redis" or "local": how this installation wakes its workers."""
    if connection.vendor == "postgresql":
        return "postgresql"
    if getattr(settings, "APOLLO_REDIS_URL", None):
        return "redis"
    return "local"


def wakeup_directory() -> Path:
    return Path(settings.VAR_DIR) / "wakeup"


def notify_new_work() -> None:
    """Tell listening workers that a deployment is waiting. Call after commit; never raises
    (a worker that was not woken finds the deployment at its next poll)."""
    kind = transport()
    try:
        if kind == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"NOTIFY {CHANNEL}")
        elif kind == "redis":
            _REDIS.publish()
        else:
            _notify_local(wakeup_directory())
    except Exception as exc:  # a wake-up is a courtesy: the deployment is committed
        log.warning("workers not woken (%s: %s); they find the work at their next poll", kind, exc)


class _Listener(Protocol):
    def wait_once(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


class WorkSignal:
    """Waits up to a poll interval, returning early when a wake-up arrives."""

    def __init__(self, shutdown: threading.Event) -> None:
        self.shutdown = shutdown
        self.listener: _Listener | None = None

    def __enter__(self) -> "WorkSignal":
        kind = transport()
        if kind == "postgresql":
            self.listener = _PostgresListener()
        elif kind == "redis":
            self.listener = _RedisListener(str(settings.APOLLO_REDIS_URL))
        else:
            self.listener = _LocalListener(wakeup_directory())
        log.info("waiting for work: woken through %s, polling as the safety net", kind)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def wait(self, timeout: float) -> bool:
        """Whether a wake-up arrived within `timeout` (False also when shutting down)."""
        if self.listener is None or self.shutdown.is_set():
            self.shutdown.wait(timeout)
            return False
        deadline = time.monotonic() + timeout
        # In slices, so that a shutdown is noticed quickly.
        while not self.shutdown.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.listener.wait_once(min(left, SLICE_SECONDS)):
                return True
        return False


# -- PostgreSQL: LISTEN/NOTIFY -------------------------------------------------------------


class _PostgresListener:
    def __init__(self) -> None:
        import psycopg

        db = connection.settings_dict
        self.connection = psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            autocommit=True,
        )
        self.connection.execute(f"LISTEN {CHANNEL}")

    def wait_once(self, timeout: float) -> bool:
        return any(True for _ in self.connection.notifies(timeout=timeout, stop_after=1))

    def close(self) -> None:
        self.connection.close()


# -- Redis: PUBLISH/SUBSCRIBE --------------------------------------------------------------


def _redis_channel() -> str:
    return f"{getattr(settings, 'APOLLO_REDIS_PREFIX', None) or 'apollo'}:{CHANNEL}"


class _RedisPublisher:
    """One client per process for the notifier; skips Redis for a while after it failed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._paused_until = 0.0

    def publish(self) -> None:
        if time.monotonic() < self._paused_until:
            return
        url = str(settings.APOLLO_REDIS_URL)
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = self._clients[url] = _redis_client(url, timeout=REDIS_TIMEOUT_SECONDS)
        try:
            client.publish(_redis_channel(), b"")
        except Exception:
            self._paused_until = time.monotonic() + REDIS_PAUSE_SECONDS
            raise


_REDIS = _RedisPublisher()


def _redis_client(url: str, *, timeout: float) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=min(timeout, 2))


class _RedisListener:
    def __init__(self, url: str) -> None:
        self.client = _redis_client(url, timeout=10)
        self.pubsub: Any = self.client.pubsub()
        self.pubsub.subscribe(_redis_channel())
        # Subscribed once Redis confirms: a publish after this reaches us.
        deadline = time.monotonic() + 5
        while (message := self.pubsub.get_message(timeout=1)) is None or message[
            "type"
        ] != "subscribe":
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError("Redis did not confirm the subscription")

    def wait_once(self, timeout: float) -> bool:
        woken = False
        message = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        while message is not None:  # several wake-ups queued: one look serves them all
            woken = woken or message["type"] == "message"
            message = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0)
        return woken

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.pubsub.close()
        with contextlib.suppress(Exception):
            self.client.close()


# -- Local: a Unix datagram socket per worker ----------------------------------------------


def _notify_local(directory: Path) -> None:
    try:
        with os.scandir(directory) as entries:
            paths = [entry.path for entry in entries if entry.name.endswith(".sock")]
    except FileNotFoundError:
        return  # no worker has ever listened here
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for path in paths:
            try:
                sender.sendto(b"", path)
            except BlockingIOError:
                pass  # its queue is full: it has wake-ups waiting already
            except (ConnectionRefusedError, FileNotFoundError):
                # A worker that died without closing: nobody reads this file any more.
                Path(path).unlink(missing_ok=True)
            except OSError as exc:
                log.debug("wake-up to %s not sent: %s", path, exc)


class _LocalListener:
    def __init__(self, directory: Path) -> None:
        # SECURITY: under VAR_DIR (private to Apollo's user) and owner-only; a datagram only
        # makes a worker look at the database, it carries nothing the worker trusts.
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = directory / f"{uuid.uuid4().hex[:16]}.sock"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.socket.bind(str(self.path))  # (fails on a path over ~107 bytes: then polls)
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)

    def wait_once(self, timeout: float) -> bool:
        readable, _, _ = select.select([self.socket], [], [], timeout)
        if not readable:
            return False
        with contextlib.suppress(BlockingIOError):
            while True:  # several wake-ups queued: one look serves them all
                self.socket.recv(16)
        return True

    def close(self) -> None:
        self.socket.close()
        self.path.unlink(missing_ok=True)
