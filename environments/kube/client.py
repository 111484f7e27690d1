"""The API client of a cluster: credentials, a pooled client per cluster, one call with
its errors translated (errors.py) and the answer as plain dicts."""

import hashlib
import logging
import os
import threading
from typing import Any

import urllib3
from django.conf import settings
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3 import poolmanager
from urllib3.connection import HTTPConnection

from apollo_site.ops.metrics import KUBE_ERRORS, count_kube_call
from environments.kube import incluster
from environments.kube.errors import ClusterUnreachable, _describe, _translate
from environments.models import Cluster

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
# (connect, read) seconds for every non-streaming call. Well under the worker's lease (30 s
# by default; tests/reliability checks it): a worker whose apply hangs hears so before another
# worker could take its deployment over and apply it a second time.
TIMEOUT = (5, 10)
FIELD_MANAGER = "apollo"
POOL_SIZE = 64


_clients: dict[tuple[int, str], client.ApiClient] = {}
_lock = threading.Lock()


def connection_key(cluster: Cluster) -> tuple[int, str]:
    """What a connection to the cluster is made of (a digest: never a credential in clear); it
    changes when any setting does, a rotated token included."""
    fingerprint = "|".join(
        [
            cluster.connection,
            cluster.kubeconfig_path,
            cluster.kubeconfig_context,
            cluster.api_url,
            cluster.ca_certificate,
            str(cluster.verify_tls),
            cluster.token_ciphertext,
            settings.APOLLO_KUBECONFIG or "",
            # In-cluster: where the ServiceAccount's files and the API server are.
            settings.APOLLO_SERVICEACCOUNT_DIR or "",
            os.environ.get("KUBERNETES_SERVICE_HOST", ""),
            os.environ.get("KUBERNETES_SERVICE_PORT", ""),
        ]
    )
    return cluster.pk, hashlib.sha256(fingerprint.encode()).hexdigest()


def api_client(cluster: Cluster) -> client.ApiClient:
    """A client for the cluster, shared by threads and rebuilt when the cluster changes."""
    key = connection_key(cluster)
    with _lock:
        cached = _clients.get(key)
        if cached is None:
            cached = _clients[key] = _build_client(cluster)
        return cached


def _build_client(cluster: Cluster) -> client.ApiClient:
    """The client, or ClusterUnreachable when the cluster's connection settings cannot be loaded
    (a kubeconfig file or context that is gone, in-cluster settings outside a pod): every caller
    already answers an unreachable cluster with a clear message, never a 500."""
    try:
        return _configured_client(cluster)
    except (config.ConfigException, OSError) as exc:
        # SECURITY: the loader's message names files and contexts, never a credential.
        raise ClusterUnreachable(
            f"the connection settings of cluster {cluster.name} cannot be loaded: {exc}"
        ) from None


def client_credentials() -> set[str]:
    """The credentials held by this process's clients, for redaction (apollo_site.redaction)."""
    with _lock:
        configurations = [api.configuration for api in _clients.values()]
    found = set()
    for configuration in configurations:
        for value in [*(configuration.api_key or {}).values(), configuration.password]:
            if isinstance(value, str) and value:
                found.add(value.removeprefix("Bearer ").strip())
    return found


def _configured_client(cluster: Cluster) -> client.ApiClient:
    configuration = client.Configuration()
    # One client serves every thread of this process (the worker's rollouts, open log tails,
    # shells): urllib3's default pool of 4 connections would churn connections under load.
    configuration.connection_pool_maxsize = POOL_SIZE
    if cluster.connection == Cluster.Connection.KUBECONFIG:
        config.load_kube_config(
            config_file=cluster.kubeconfig_path or settings.APOLLO_KUBECONFIG,
            context=cluster.kubeconfig_context or None,
            client_configuration=configuration,
            persist_config=False,
        )
    elif cluster.connection == Cluster.Connection.IN_CLUSTER:
        # Not the client's load_incluster_config: that one re-reads a rotated token only
        # once a minute and from a fixed path (see incluster.py).
        incluster.configure(configuration)
    else:
        configuration.host = cluster.api_url.rstrip("/")
        # SECURITY: decrypted only here, in memory, for the client's Authorization header.
        configuration.api_key = {"authorization": cluster.get_token()}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        configuration.verify_ssl = cluster.verify_tls
        if cluster.ca_certificate:
            configuration.ssl_ca_cert = _ca_file(cluster.ca_certificate)
    api = client.ApiClient(configuration)
    manager = api.rest_client.pool_manager
    if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:  # (not SOCKS)
        manager.pool_classes_by_scheme = {"http": _GivenBackOnce, "https": _HTTPSPool}
    return api


class _GivenBackOnce(urllib3.HTTPConnectionPool):
    """A pool that takes a connection back once.

    read.py closes a watch from another thread (to stop it at once), and urllib3's
    release_conn is not atomic: the closing thread and the reading one may both give the
    connection back. The second is ignored: otherwise the connection sits in the pool twice
    and two requests share it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._giving_back = threading.Lock()

    def _put_conn(self, conn: HTTPConnection | None) -> None:  # type: ignore[override]
        with self._giving_back:
            idle = self.pool
            if conn is not None and idle is not None and any(c is conn for c in list(idle.queue)):
                return  # given back already
            super()._put_conn(conn)


class _HTTPSPool(_GivenBackOnce, urllib3.HTTPSConnectionPool):
    pass


def _ca_file(pem: str) -> str:
    # The client wants a path; a CA certificate is public, so a file under var/ is fine.
    directory = settings.VAR_DIR / "ca"
    directory.mkdir(exist_ok=True)
    path = directory / f"{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        path.write_text(pem)
    return str(path)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    verb = count_kube_call(function)
    try:
        return function(*args, _request_timeout=TIMEOUT, **kwargs)
    except ApiException as exc:
        KUBE_ERRORS.labels(verb).inc()
        raise _translate(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        KUBE_ERRORS.labels(verb).inc()
        raise ClusterUnreachable(_describe(exc)) from None


def _plain(api: client.ApiClient, obj: Any) -> Obj:
    result: Obj = api.sanitize_for_serialization(obj)
    return result


def _apis(cluster: Cluster) -> dict[str, Any]:
    api = api_client(cluster)
    return {
        "core": client.CoreV1Api(api),
        "apps": client.AppsV1Api(api),
        "networking": client.NetworkingV1Api(api),
    }
