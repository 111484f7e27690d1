"""A live Apollo for browser tests: daphne in a child process on the test database."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from channels.routing import get_default_application
from daphne.testing import DaphneProcess
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper
from django.test.utils import modify_settings

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LiveServer:
    url: str
    ws_url: str


def _application() -> Any:
    # Module-level so that the child process can build it after the fork.
    return ASGIStaticFilesHandler(get_default_application())


@contextmanager
def start_live_server() -> Iterator[LiveServer]:
    for connection in connections.all():
        if isinstance(connection, SQLiteWrapper) and connection.is_in_memory_db():
            raise RuntimeError("the live server needs a file-backed test database")
    with modify_settings(ALLOWED_HOSTS={"append": HOST}):
        process = DaphneProcess(HOST, _application)
        process.daemon = True
        process.start()
        if not process.ready.wait(timeout=30):
            process.terminate()
            raise RuntimeError("daphne did not start within 30 s")
        port = process.port.value
        try:
            yield LiveServer(url=f"http://{HOST}:{port}", ws_url=f"ws://{HOST}:{port}")
        finally:
            process.terminate()
            process.join(timeout=10)
