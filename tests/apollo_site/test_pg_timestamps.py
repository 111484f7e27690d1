"""On PostgreSQL in UTC, timestamps are read by psycopg's C loader (apollo_site.pg_timestamps,
#16) and are exactly what Django's own loader reads: the same instants, tzinfo
datetime.timezone.utc, the same error for what Python cannot hold. In another time zone
Django's loader stays."""

import datetime
from typing import Any

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import (  # type: ignore[import-untyped]
    register_tzloader,
)

from apollo_site.pg_timestamps import utc_loader
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's timestamps (CI runs it)"
    ),
]

TIMESTAMPTZ = 1184
VALUES = [
    "2026-11-30 12:34:56.123456+00",
    "2026-06-01 12:00:00+02",
    "2026-03-29 01:30:00-09:30",
    "1969-12-31 23:59:59.999999+00",
    "1900-01-01 00:00:00+00",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
]
OUT_OF_RANGE = ["infinity", "-infinity", "10000-01-01 00:00:00+00", "0001-01-01 00:00:00+00 BC"]


def _text_loader() -> Any:
    """The loader class this connection reads timestamptz (text format) with."""
    from psycopg.pq import Format

    connection.ensure_connection()
    return connection.connection.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)


def _read(sql: str, params: list[str], *, djangos: bool) -> Any:
    with connection.cursor() as cursor:
        if djangos:  # Django's own loader, on this cursor only
            register_tzloader(datetime.UTC, cursor.cursor)
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_the_connection_reads_timestamps_with_the_c_loader() -> None:
    loader: Any = _text_loader()
    assert loader is utc_loader()
    assert loader.timezone == connection.timezone == datetime.UTC


@pytest.mark.parametrize("value", VALUES)
def test_each_value_reads_as_djangos_loader_reads_it(value: str) -> None:
    sql = "SELECT %s::timestamptz"
    fast = _read(sql, [value], djangos=False)[0][0]
    slow = _read(sql, [value], djangos=True)[0][0]
    assert fast == slow
    assert fast.tzinfo is datetime.UTC
    assert slow.tzinfo is datetime.UTC
    assert fast.isoformat() == slow.isoformat()


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_a_value_python_cannot_hold_fails_as_with_djangos_loader(value: str) -> None:
    from django.db.utils import DataError

    sql = "SELECT %s::timestamptz"
    with pytest.raises(DataError) as fast:
        _read(sql, [value], djangos=False)
    with pytest.raises(DataError) as slow:
        _read(sql, [value], djangos=True)
    assert type(fast.value.__cause__) is type(slow.value.__cause__)


def test_a_model_reads_back_the_instant_it_saved(alice: Any) -> None:
    at = datetime.datetime(2026, 11, 30, 23, 59, 58, 654321, tzinfo=datetime.UTC)
    deployment = factories.make_deployment(
        service=factories.make_service("checkout"),
        environment=factories.make_environment("staging-1"),
        deployed_by=alice,
        finished_at=at,
    )
    deployment.refresh_from_db()
    assert deployment.finished_at == at
    assert deployment.finished_at.tzinfo is datetime.UTC


def test_another_time_zone_keeps_djangos_loader() -> None:
    from zoneinfo import ZoneInfo

    from django.db.backends.postgresql.base import DatabaseWrapper
    from psycopg.pq import Format

    paris = DatabaseWrapper({**connection.settings_dict, "TIME_ZONE": "Europe/Paris"}, "paris")
    try:
        paris.ensure_connection()
        loader = paris.connection.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)
        assert loader is not utc_loader()
        assert loader.timezone == ZoneInfo("Europe/Paris")
        with paris.cursor() as cursor:
            cursor.execute("SELECT %s::timestamptz", [VALUES[0]])
            read = cursor.fetchone()[0]
        assert read.tzinfo == ZoneInfo("Europe/Paris")
        assert read == datetime.datetime(2026, 11, 30, 12, 34, 56, 123456, datetime.UTC)
    finally:
        paris.close()
