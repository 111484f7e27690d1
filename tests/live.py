"""A live Apollo for browser tests: daphne in a *spawned* child process on the test database.

Spawned, not forked: a fork copies the test process mid-flight (asgiref's executor threads,
locks held by the worker or kubesim threads, open connections) and the child can hang on
its first database call. A spawned child starts clean and is told only what it needs: the
test database's name and the password hashers the tests use.
"""

import functools
import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from daphne.testing import DaphneProcess
from django.conf import settings
from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LiveServer:
    url: str
    ws_url: str


def _application(database_name: str, password_hashers: list[str]) -> Any:
    """Runs in the child: point Django at the test database, then build the ASGI app."""
    from django.conf import settings as child_settings

    child_settings.DATABASES["default"]["NAME"] = database_name
    child_settings.PASSWORD_HASHERS = password_hashers
    import django

    django.setup()
    from channels.routing import get_default_application
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    return ASGIStaticFilesHandler(get_default_application())


class _SpawnedDaphne(DaphneProcess):  # type: ignore[misc]
    def __init__(self, host: str, get_application: Any) -> None:
        super().__init__(host, get_application)
        # Shared objects must come from the same (spawn) context as the process.
        spawn = multiprocessing.get_context("spawn")
        self.port = spawn.Value("i", 0)
        self.ready = spawn.Event()
        self.errors = spawn.Queue()

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return multiprocessing.get_context("spawn").Process._Popen(process_obj)


@contextmanager
def start_live_server() -> Iterator[LiveServer]:
    connection = connections["default"]
    if isinstance(connection, SQLiteWrapper) and connection.is_in_memory_db():
        raise RuntimeError("the live server needs a file-backed test database")
    build = functools.partial(
        _application, str(connection.settings_dict["NAME"]), list(settings.PASSWORD_HASHERS)
    )
    process = _SpawnedDaphne(HOST, build)
    process.daemon = True
    process.start()
    if not process.ready.wait(timeout=60):
        process.terminate()
        raise RuntimeError("daphne did not start within 60 s")
    port = process.port.value
    try:
        yield LiveServer(url=f"http://{HOST}:{port}", ws_url=f"ws://{HOST}:{port}")
    finally:
        process.terminate()
        process.join(timeout=10)
