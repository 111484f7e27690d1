"""The worker's Kubernetes request pool keeps no database connection: its threads live as long
as the process, so a connection one of them kept would outlive a database outage. The CI run on
PostgreSQL found it: after another test terminated every backend, each later rollout whose
Events were read in the pool (the cluster loaded lazily there) failed its step forever with
"the connection is closed", resuming in a 12 ms loop."""

from typing import Any

import pytest
from django.db import connections

from deployments.engine import worker as worker_module
from deployments.models import Deployment

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_query_made_in_the_request_pool_leaves_no_connection_open() -> None:
    def query() -> Any:
        Deployment.objects.exists()
        used = connections["default"]
        assert used.connection is not None  # the query opened this thread's connection
        return used

    used = worker_module._requests(query).result(timeout=30)
    assert used.connection is None


def test_an_error_in_the_request_pool_still_closes_the_connection() -> None:
    opened: list[Any] = []

    def failing() -> None:
        Deployment.objects.exists()
        opened.append(connections["default"])
        raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError, match="the request failed"):
        worker_module._requests(failing).result(timeout=30)
    assert opened[0].connection is None
