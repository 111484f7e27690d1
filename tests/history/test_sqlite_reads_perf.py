"""SQLite reads the database through a memory map (apollo_site.settings.SQLITE_OPTIONS): the
History page's searches read rows spread over the file, more than a connection's own page
cache holds (issue #16)."""

import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "sqlite", reason="an SQLite setting")
def test_every_sqlite_connection_maps_the_database_file() -> None:
    fresh = connections.create_connection("default")  # runs the settings' init_command
    try:
        with fresh.cursor() as cursor:
            cursor.execute("PRAGMA mmap_size")
            assert cursor.fetchone()[0] == 268435456
    finally:
        fresh.close()
