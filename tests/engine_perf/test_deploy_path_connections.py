"""The cluster client's connections (#16): a connection given back twice (a watch closed from
another thread, while its own thread releases it too) is idle once, never shared by two
requests."""

import pytest
import urllib3

from environments import kube
from environments.kube.client import api_client
from environments.models import Environment

pytestmark = pytest.mark.django_db(transaction=True)


def _pool(environment: Environment) -> urllib3.HTTPConnectionPool:
    manager = api_client(environment.cluster).rest_client.pool_manager
    pool: urllib3.HTTPConnectionPool = manager.connection_from_url(environment.cluster.api_url)
    return pool


def test_a_connection_given_back_twice_is_idle_once(staging: Environment) -> None:
    kube.read_deployment(staging.cluster, staging.namespace, "web")
    pool = _pool(staging)
    conn, other = pool._get_conn(), pool._get_conn()  # (two in use: room for two in the pool)
    pool._put_conn(conn)
    pool._put_conn(conn)  # (the closing thread's release, then the reading thread's)
    assert pool.pool is not None
    assert sum(1 for c in list(pool.pool.queue) if c is conn) == 1
    assert not conn.is_closed
    pool._put_conn(other)
