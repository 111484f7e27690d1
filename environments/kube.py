"""The one module that speaks to Kubernetes, through the official client.

Views, services and the worker call these functions; none of them builds an API call
itself. Objects come back as plain dicts in the API's own camelCase shape, so that what
Apollo stores in timelines and snapshots is what `kubectl get -o json` would show.
"""

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from environments.models import Cluster

Obj = dict[str, Any]
TIMEOUT = (5, 30)  # (connect, read) seconds for every non-streaming call
FIELD_MANAGER = "apollo"


class ClusterUnreachable(Exception):
    """The API server did not answer (refused, timed out, or 5xx)."""


class KubeError(Exception):
    """The API server answered with an error Status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ApplyPath:
    api: str  # "core", "apps", "networking"
    plural: str


APPLY_PATHS: dict[str, ApplyPath] = {
    "Deployment": ApplyPath("apps", "deployment"),
    "Service": ApplyPath("core", "service"),
    "ConfigMap": ApplyPath("core", "config_map"),
    "Secret": ApplyPath("core", "secret"),
    "Ingress": ApplyPath("networking", "ingress"),
}

_clients: dict[tuple[int, str], client.ApiClient] = {}
_lock = threading.Lock()


def _cache_key(cluster: Cluster) -> tuple[int, str]:
    fingerprint = "|".join(
        [cluster.connection, cluster.kubeconfig_path, cluster.kubeconfig_context, cluster.api_url,
         cluster.ca_certificate, str(cluster.verify_tls), cluster.token_ciphertext,
         settings.APOLLO_KUBECONFIG or ""]
    )  # fmt: skip
    return cluster.pk, hashlib.sha256(fingerprint.encode()).hexdigest()


def api_client(cluster: Cluster) -> client.ApiClient:
    """A client for the cluster, shared by threads and rebuilt when the cluster changes."""
    key = _cache_key(cluster)
    with _lock:
        cached = _clients.get(key)
        if cached is None:
            cached = _clients[key] = _build_client(cluster)
        return cached


def _build_client(cluster: Cluster) -> client.ApiClient:
    if cluster.connection == Cluster.Connection.KUBECONFIG:
        path = cluster.kubeconfig_path or settings.APOLLO_KUBECONFIG
        return config.new_client_from_config(
            config_file=path, context=cluster.kubeconfig_context or None
        )
    configuration = client.Configuration()
    if cluster.connection == Cluster.Connection.IN_CLUSTER:
        config.load_incluster_config(client_configuration=configuration)
    else:
        configuration.host = cluster.api_url.rstrip("/")
        # SECURITY: decrypted only here, in memory, for the client's Authorization header.
        configuration.api_key = {"authorization": cluster.get_token()}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        configuration.verify_ssl = cluster.verify_tls
        if cluster.ca_certificate:
            configuration.ssl_ca_cert = _ca_file(cluster.ca_certificate)
    return client.ApiClient(configuration)


def _ca_file(pem: str) -> str:
    # The client wants a path; a CA certificate is public, so a file under var/ is fine.
    directory = settings.VAR_DIR / "ca"
    directory.mkdir(exist_ok=True)
    path = directory / f"{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        path.write_text(pem)
    return str(path)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, _request_timeout=TIMEOUT, **kwargs)
    except ApiException as exc:
        raise _translate(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnreachable(_describe(exc)) from None


def _translate(exc: ApiException) -> Exception:
    status = int(exc.status or 0)
    if status == 0 or status >= 500:
        return ClusterUnreachable(f"API server answered {status} {exc.reason}")
    import json

    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    return KubeError(status, str(body.get("reason") or exc.reason), str(body.get("message") or ""))


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)[:300]


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


def apply(cluster: Cluster, namespace: str, documents: list[Obj]) -> list[Obj]:
    """Server-side apply every document with field manager `apollo` (force: Apollo owns them)."""
    apis = _apis(cluster)
    applied = []
    for doc in documents:
        path = APPLY_PATHS[doc["kind"]]
        patch = getattr(apis[path.api], f"patch_namespaced_{path.plural}")
        result = _call(
            patch, doc["metadata"]["name"], namespace, doc, field_manager=FIELD_MANAGER,
            force=True, _content_type="application/apply-patch+yaml",
        )  # fmt: skip
        applied.append(_plain(api_client(cluster), result))
    return applied


def read_deployment(cluster: Cluster, namespace: str, name: str) -> Obj | None:
    try:
        obj = _call(_apis(cluster)["apps"].read_namespaced_deployment, name, namespace)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    return _plain(api_client(cluster), obj)


def list_objects(
    cluster: Cluster, kind: str, namespace: str, **selectors: str
) -> tuple[list[Obj], str]:
    """Items and the list's resourceVersion (to start a watch from)."""
    api_name, method = _LISTS[kind]
    result = _call(getattr(_apis(cluster)[api_name], method), namespace, **selectors)
    plain = _plain(api_client(cluster), result)
    return plain.get("items") or [], str(plain["metadata"].get("resourceVersion", ""))


_LISTS = {
    "Pod": ("core", "list_namespaced_pod"),
    "Deployment": ("apps", "list_namespaced_deployment"),
    "ReplicaSet": ("apps", "list_namespaced_replica_set"),
    "Event": ("core", "list_namespaced_event"),
}


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: Obj


class WatchExpired(Exception):
    """410 Gone: the resourceVersion is too old; relist and watch again."""


def watch_objects(
    cluster: Cluster, kind: str, namespace: str, *, resource_version: str,
    timeout_seconds: int, **selectors: str,
) -> Iterator[WatchEvent]:  # fmt: skip
    """One watch request; ends after timeout_seconds or when the server ends it."""
    api_name, method = _LISTS[kind]
    api = api_client(cluster)
    watcher = watch.Watch()
    stream = watcher.stream(
        getattr(_apis(cluster)[api_name], method), namespace, resource_version=resource_version,
        timeout_seconds=timeout_seconds, allow_watch_bookmarks=True,
        _request_timeout=(5, timeout_seconds + 10), **selectors,
    )  # fmt: skip
    try:
        for event in stream:
            if event["type"] == "ERROR":
                raw = event.get("raw_object") or {}
                if raw.get("code") == 410:
                    raise WatchExpired(str(raw.get("message", "")))
                raise KubeError(int(raw.get("code", 500)), str(raw.get("reason")), str(raw))
            yield WatchEvent(event["type"], _plain(api, event["object"]))
    except ApiException as exc:
        if exc.status == 410:
            raise WatchExpired(str(exc.reason)) from None
        raise _translate(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnreachable(_describe(exc)) from None
    finally:
        watcher.stop()


def pod_log_tail(
    cluster: Cluster, namespace: str, pod: str, *, container: str | None = None,
    lines: int = 20, previous: bool = False,
) -> list[str]:  # fmt: skip
    kwargs: dict[str, Any] = {"tail_lines": lines, "previous": previous}
    if container:
        kwargs["container"] = container
    try:
        text = _call(_apis(cluster)["core"].read_namespaced_pod_log, pod, namespace, **kwargs)
    except KubeError:
        return []
    return str(text).splitlines()[-lines:]
