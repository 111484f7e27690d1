"""The catalogue's reads (permissions.selectors._FIXED_READS: every service's row, every
service's id, every environment's id, availability and name) run their statements compiled
once per process and database and read from the cursor (#16: the Deploy page's 1,000 services
through Django's row iterator were 1.37 ms, 0.80 this way): the same statements as the
querysets', the same rows, the flag a bool on every database, each once per request."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Service
from environments.models import Environment
from permissions.selectors import (
    _FIXED_READS,
    _fixed_sql,
    _read_fixed,
    catalogue,
    reads_shared_for_one_request,
    service_rows,
)
from tests import factories

pytestmark = pytest.mark.django_db

QUERYSETS: dict[str, Any] = {
    "service rows": Service.objects.order_by("name").values_list(
        "pk", "name", "deployed_per_group"
    ),
    "service ids": Service.objects.order_by().values_list("pk"),
    "environment catalogue": Environment.objects.order_by().values_list(
        "pk", "availability", "name"
    ),
}


@pytest.fixture
def services() -> None:
    factories.make_service("ledger", deployed_per_group=True)
    factories.make_service("checkout")
    factories.make_service("billing", deployed_per_group=True)
    factories.make_environment("staging-1", availability="staging")
    factories.make_environment("production-1")


def test_every_fixed_read_is_named_here() -> None:
    assert set(_FIXED_READS) == set(QUERYSETS)


@pytest.mark.parametrize("name", list(QUERYSETS))
def test_the_statement_is_the_one_django_compiles(name: str) -> None:
    djangos, _ = QUERYSETS[name].query.sql_with_params()
    assert _fixed_sql("default", connection.vendor, name) == djangos


@pytest.mark.parametrize("name", ["service ids", "environment catalogue"])
def test_the_rows_are_the_querysets(services: None, name: str) -> None:
    assert sorted(_read_fixed(name)) == sorted(QUERYSETS[name])


def test_the_service_rows_are_the_querysets_in_name_order(services: None) -> None:
    rows = service_rows()
    assert rows == list(QUERYSETS["service rows"])
    assert [name for _, name, _ in rows] == ["billing", "checkout", "ledger"]
    assert [type(per_group) for _, _, per_group in rows] == [bool, bool, bool]
    assert [per_group for _, _, per_group in rows] == [True, False, True]


def test_a_request_reads_them_once_and_a_later_one_sees_what_was_added(services: None) -> None:
    with reads_shared_for_one_request():
        with CaptureQueriesContext(connection) as statements:
            first, again = service_rows(), service_rows()
            ids, environments = catalogue()
            assert catalogue() == (ids, environments)
        assert first is again
        # The service rows, then the environments: the ids come from the service rows.
        assert len(statements.captured_queries) == 2
    factories.make_service("api")
    factories.make_environment("qa-1")
    with reads_shared_for_one_request():
        ids, environments = catalogue()
        assert sorted(ids) == sorted(Service.objects.values_list("pk", flat=True))
        assert len(environments) == 3
        assert [name for _, name, _ in service_rows()] == ["api", "billing", "checkout", "ledger"]
