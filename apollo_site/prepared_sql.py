"""A cursor whose statements PostgreSQL keeps prepared on the connection (#16).

Django binds parameters on the client and never prepares: PostgreSQL parses and plans every
statement on every run. For most of a page's statements that is right (their best plan depends
on the values: an environment's share of the history, a filter's selectivity). A few
statements are the same on every page and plan the same for every value, and their planning
costs more than their run: the reader's grants, read on every developer's page, took 0.57-0.79
ms to plan and 0.08 to run (PostgreSQL 15, the board bench's data, 2026-12). Read through
`prepared_cursor`, such a statement is parsed once per connection, and after five runs
PostgreSQL keeps the generic plan it made (plan_cache_mode auto): a web process keeps its
connections (CONN_MAX_AGE), so from its sixth page a process only binds and runs it.

psycopg prepares through the extended protocol (the first run on a connection waits for the
Parse: one more round trip, once) and keeps its own account of what is prepared: a rollback or
a DISCARD ALL makes it forget and deallocate them, and a connection made again starts empty;
PostgreSQL plans a prepared statement again when a table it reads changes. Only a
server-binding cursor prepares: Django's client-binding cursors ignore the connection's
threshold, so they are unchanged.

`APOLLO_DATABASE_PREPARED_STATEMENTS=0` turns it off (the database's OPTIONS
`prepare_threshold` None, Django's default), for a transaction-mode pooler that cannot keep
prepared statements (PgBouncer before 1.21, or without `max_prepared_statements`): the
statements then run through Django's usual cursor. SQLite has nothing to prepare: its cursor is
Django's.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import import_module
from typing import Any

from django.db import connections
from django.db.backends.utils import CursorWrapper


@contextmanager
def prepared_cursor(using: str) -> Iterator[CursorWrapper]:
    """Django's cursor (its query log, execute wrappers and error translation stay), with
    psycopg's server-binding cursor inside it on PostgreSQL when prepared statements are on.
    For statements whose plan does not depend on their values; not for executemany."""
    connection = connections[using]
    cursor = connection.cursor()
    try:
        raw: Any = connection.connection
        if connection.vendor == "postgresql" and raw.prepare_threshold is not None:
            cursor.cursor = _server_binding_cursor(connection, raw, cursor.cursor)
        yield cursor
    finally:
        cursor.close()


def _server_binding_cursor(connection: Any, raw: Any, client_cursor: Any) -> Any:
    from psycopg.pq import Format

    backend, adapters = _backend()
    client_cursor.close()
    cursor = _cursor_class()(raw)
    # As create_cursor(): the cursor's time zone, when the connection's loader has another one.
    loader = raw.adapters.get_loader(backend.TIMESTAMPTZ_OID, Format.TEXT)
    if connection.timezone != loader.timezone:
        adapters.register_tzloader(connection.timezone, cursor)
    return cursor


def _backend() -> tuple[Any, Any]:
    # The backend's own modules, as create_cursor() uses them with server_side_binding on
    # (imported when asked: they need psycopg, which a SQLite installation may lack; their
    # psycopg 3 names are defined conditionally, so the stubs do not know them).
    return (
        import_module("django.db.backends.postgresql.base"),
        import_module("django.db.backends.postgresql.psycopg_any"),
    )


@cache
def _cursor_class() -> Any:
    class PreparingCursor(_backend()[0].ServerBindingCursor):  # type: ignore[misc]
        """Django's server-binding cursor, whose last query reads as a client-binding cursor's:
        Django's query log (DEBUG, tests capturing queries) takes a statement's text from the
        cursor's last query, which psycopg records for a statement sent unprepared only, and
        then with $1, $2... in place of its values. Here it is the statement with its values,
        composed as Django composes them for server-side binding, when the log reads it: so
        a logged statement can be run again (the benches EXPLAIN them)."""

        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            try:
                return super().execute(query, params, **kwargs)
            finally:
                self._query = _Composed(self.connection, query, params)

    return PreparingCursor


class _Composed:
    """A statement and its values, as a client-binding cursor's last query: `.query` is the
    statement with its values in it (bytes), composed when asked."""

    def __init__(self, connection: Any, query: Any, params: Any) -> None:
        self.connection, self.statement, self.params = connection, query, params

    @property
    def query(self) -> bytes:
        from psycopg import ClientCursor

        with ClientCursor(self.connection) as cursor:
            return str(cursor.mogrify(self.statement, self.params)).encode()
