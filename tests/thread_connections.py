"""The database connections that threads other than the test's own opened, closed before the test
database is dropped.

Django keeps a connection per thread, open between uses for CONN_MAX_AGE (60 s on PostgreSQL,
as in production). A thread that outlives its test, as asgiref's executor thread does (Channels'
`database_sync_to_async` runs there, for every websocket test), keeps its connection open to the
end of the session, and PostgreSQL refuses to drop a database someone is connected to:
"database "test_test" is being accessed by other users". Each connection is remembered when it
is opened; at the end, those not the main thread's are closed (their raw connection: Django's
wrapper refuses to be closed from another thread)."""

import threading
import weakref
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

_opened: "weakref.WeakKeyDictionary[BaseDatabaseWrapper, int]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _remember(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    with _lock:
        _opened[connection] = threading.get_ident()  # (the thread that opened it)


def remember_connections() -> None:
    """From now on, remember every connection any thread opens (idempotent)."""
    connection_created.connect(_remember, dispatch_uid="tests.thread_connections")


def close_other_threads_connections(*, opened_by: int | None = None) -> int:
    """Close the connections other threads opened and still hold (only thread `opened_by`'s
    when given); how many were open. Each wrapper is left to connect again at its next use
    in its own thread, as after a connection Django found unusable."""
    own = set(connections.all(initialized_only=True))
    with _lock:
        others = [
            wrapper
            for wrapper, thread in _opened.items()
            if wrapper not in own and opened_by in (None, thread)
        ]
    closed = 0
    for wrapper in others:
        raw = wrapper.connection
        # (sqlite3's connections have no `closed`, and need none of this: removing a file does
        # not wait for its readers.)
        if raw is None or getattr(raw, "closed", True):
            continue
        pool = getattr(raw, "_pool", None)  # (psycopg's: the pool it was taken from, if any)
        raw.close()
        if pool is not None:
            pool.putconn(raw)  # its slot back to the pool (which replaces a closed connection)
        wrapper.connection = None  # (its thread opens a new one when it next needs one)
        closed += 1
    return closed
