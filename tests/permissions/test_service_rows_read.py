"""permissions.selectors.service_rows reads every service's (id, name, deployed per group) by
its statement compiled once per process and database (#16: the Deploy page's 1,000 services
through Django's row iterator were 1.37 ms, 0.80 this way): the same statement as the
queryset's, the same rows, the flag a bool on every database, and once per request."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Service
from permissions.selectors import _service_rows_sql, reads_shared_for_one_request, service_rows
from tests import factories

pytestmark = pytest.mark.django_db

QUERYSET = Service.objects.order_by("name").values_list("pk", "name", "deployed_per_group")


def test_the_rows_are_the_querysets_in_name_order() -> None:
    factories.make_service("ledger", deployed_per_group=True)
    factories.make_service("checkout")
    factories.make_service("billing", deployed_per_group=True)
    rows = service_rows()
    assert rows == list(QUERYSET)
    assert [name for _, name, _ in rows] == ["billing", "checkout", "ledger"]
    assert [type(per_group) for _, _, per_group in rows] == [bool, bool, bool]
    assert [per_group for _, _, per_group in rows] == [True, False, True]


def test_the_statement_is_the_one_django_compiles() -> None:
    assert _service_rows_sql("default", connection.vendor) == QUERYSET.query.sql_with_params()[0]


def test_a_request_reads_them_once_and_a_later_one_sees_a_new_service() -> None:
    factories.make_service("checkout")
    with reads_shared_for_one_request():
        with CaptureQueriesContext(connection) as statements:
            first, again = service_rows(), service_rows()
        assert first is again
        assert len(statements.captured_queries) == 1
    factories.make_service("billing")
    with reads_shared_for_one_request():
        assert [name for _, name, _ in service_rows()] == ["billing", "checkout"]
