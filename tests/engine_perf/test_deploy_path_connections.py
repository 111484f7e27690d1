"""The cluster client's connections (#16): the watches a rollout closes at its verdict do not make
the next deployment's requests open connections (TLS handshakes) on their way: what a watch
gave back closed is opened again off the request path, and a connection given back twice
(a watch closed from another thread) is idle once, never shared by two requests."""

import threading
import time

import pytest
import urllib3
from urllib3.connection import HTTPSConnection

from environments import kube
from environments.kube.client import api_client
from environments.kube.read import WatchStream
from environments.models import Environment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread of each connection opened (urllib3's connect, called through)."""
    opened: list[str] = []
    original = HTTPSConnection.connect

    def counting(self: HTTPSConnection) -> None:
        opened.append(threading.current_thread().name)
        original(self)

    monkeypatch.setattr(HTTPSConnection, "connect", counting)
    return opened


def _pool(environment: Environment) -> urllib3.HTTPConnectionPool:
    manager = api_client(environment.cluster).rest_client.pool_manager
    pool: urllib3.HTTPConnectionPool = manager.connection_from_url(environment.cluster.api_url)
    return pool


def _idle_open(pool: urllib3.HTTPConnectionPool) -> int:
    assert pool.pool is not None
    return sum(1 for c in list(pool.pool.queue) if c is not None and not c.is_closed)


def test_requests_after_a_rollouts_watches_closed_open_no_connection(
    staging: Environment, connects: list[str]
) -> None:
    cluster, namespace = staging.cluster, staging.namespace
    assert kube.read_deployment(cluster, namespace, "web") is None
    version = kube.collection_version(cluster, "Deployment", namespace)
    # A rollout's watches (its Deployment's, its pods'), closed at the verdict from this thread.
    watches = [
        WatchStream(cluster, kind, namespace, resource_version=version, timeout_seconds=30)
        for kind in ("Deployment", "Pod")
    ]
    for watch in watches:
        watch.close()
    pool, deadline = _pool(staging), time.monotonic() + 30
    while _idle_open(pool) < 2:  # opened again in the background
        assert time.monotonic() < deadline, "the closed connections were not opened again"
        time.sleep(0.01)
    connects.clear()

    # The next deployment's owner checks and first reads, one after another as in a round.
    for _ in range(3):
        assert kube.read_deployment(cluster, namespace, "web") is None
        kube.collection_version(cluster, "Pod", namespace)
    assert connects == []


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
