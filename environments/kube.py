"""The one module that speaks to Kubernetes, through the official client.

Views, services and the worker call these functions; none of them builds an API call
itself. Objects come back as plain dicts in the API's own camelCase shape, so that what
Apollo stores in timelines and snapshots is what `kubectl get -o json` would show.
"""

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from deployments.rendering import LABEL_GROUP, LABEL_SERVICE, MANAGED_BY
from environments.models import Cluster
from environments.names import check_container_name, check_object_name

Obj = dict[str, Any]
TIMEOUT = (5, 30)  # (connect, read) seconds for every non-streaming call
FIELD_MANAGER = "apollo"
POOL_SIZE = 64


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


# A real kube-apiserver answers a server-side apply whose manifest does not fit the schema (a
# misspelt field) with 500 and this message: the manifest is refused, a retry cannot help.
_REFUSED_APPLY = "failed to create typed patch object"


def _translate(exc: ApiException) -> Exception:
    status = int(exc.status or 0)
    import json

    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or "")
    if (status == 0 or status >= 500) and not message.startswith(_REFUSED_APPLY):
        return ClusterUnreachable(f"API server answered {status} {exc.reason}")
    return KubeError(status, str(body.get("reason") or exc.reason), message)


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


class NotOwned(Exception):
    """An object of the manifests exists and does not carry this service's (and group's)
    identity labels: Apollo does not take it over. The message names its owner."""


# SECURITY: the labels that say which service (and group) an object Apollo applied belongs to.
IDENTITY_LABELS = (MANAGED_BY, LABEL_SERVICE, LABEL_GROUP)


def apply(
    cluster: Cluster,
    namespace: str,
    documents: list[Obj],
    *,
    checked: dict[tuple[str, str], str | None] | None = None,
) -> list[Obj]:
    """Server-side apply every document with field manager `apollo` (force: Apollo owns them).

    SECURITY: an object is applied only when it does not exist or carries the identity labels
    of the document (this service's, and group's); otherwise NotOwned, and that document is
    not applied. `checked` holds what owned_version said of (kind, name) just before (the
    worker checks every document before the first apply); the others are checked here. The
    checked resourceVersion goes with the apply: an object replaced since the check makes the
    API server refuse the apply (409) rather than Apollo take it over.
    """
    apis = _apis(cluster)
    applied = []
    for doc in documents:
        path = APPLY_PATHS[doc["kind"]]
        name = doc["metadata"]["name"]
        key = (doc["kind"], name)
        version = (
            checked[key] if checked and key in checked else owned_version(cluster, namespace, doc)
        )
        body = doc
        if version:
            body = {**doc, "metadata": {**doc["metadata"], "resourceVersion": version}}
        patch = getattr(apis[path.api], f"patch_namespaced_{path.plural}")
        result = _call(
            patch, name, namespace, body, field_manager=FIELD_MANAGER,
            force=True, _content_type="application/apply-patch+yaml",
        )  # fmt: skip
        applied.append(_plain(api_client(cluster), result))
    return applied


def owned_version(cluster: Cluster, namespace: str, doc: Obj) -> str | None:
    """The resourceVersion of the object the document names when it carries the document's
    identity labels, None when it does not exist; NotOwned (naming the owner) otherwise."""
    path = APPLY_PATHS[doc["kind"]]
    if doc["kind"] == "Ingress":
        _check_hosts(cluster, namespace, doc)
    current = _read_current(_apis(cluster), path, namespace, doc["metadata"]["name"])
    if current is None:
        return None
    _check_owner(doc, current)
    return str((current.get("metadata") or {}).get("resourceVersion") or "") or None


def _read_current(apis: dict[str, Any], path: ApplyPath, namespace: str, name: str) -> Obj | None:
    read = getattr(apis[path.api], f"read_namespaced_{path.plural}")
    try:
        obj = _call(read, name, namespace)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    return _plain(apis[path.api].api_client, obj)


def _check_hosts(cluster: Cluster, namespace: str, doc: Obj) -> None:
    """SECURITY: an Ingress may not claim a host another owner's Ingress serves (in any
    namespace Apollo may list; in this one when it may not list them all)."""
    hosts = _ingress_hosts(doc)
    if not hosts:
        return
    api = _apis(cluster)["networking"]
    try:
        listed = _call(api.list_ingress_for_all_namespaces)
    except KubeError as exc:
        if exc.status != 403:
            raise
        listed = _call(api.list_namespaced_ingress, namespace)
    wanted = doc["metadata"].get("labels") or {}
    for other in _plain(api.api_client, listed).get("items") or []:
        meta = other.get("metadata") or {}
        labels = meta.get("labels") or {}
        mine = all(labels.get(label) == wanted.get(label) for label in IDENTITY_LABELS)
        if meta.get("namespace") == namespace and mine:
            continue
        for host in sorted(hosts & _ingress_hosts(other)):
            owner = labels.get(LABEL_SERVICE) or "not created by Apollo"
            raise NotOwned(
                f"Ingress/{doc['metadata']['name']}: host {host} is already served by "
                f"Ingress/{meta.get('name')} in {meta.get('namespace')} (service: {owner})"
            )


def _ingress_hosts(ingress: Obj) -> set[str]:
    spec = ingress.get("spec") or {}
    hosts = {str(rule.get("host")) for rule in spec.get("rules") or [] if rule.get("host")}
    for tls in spec.get("tls") or []:
        hosts.update(str(host) for host in tls.get("hosts") or [])
    return hosts


def _check_owner(doc: Obj, current: Obj) -> None:
    wanted = doc["metadata"].get("labels") or {}
    found = (current.get("metadata") or {}).get("labels") or {}
    if all(found.get(label) == wanted.get(label) for label in IDENTITY_LABELS):
        return
    what = f"{doc['kind']}/{doc['metadata']['name']}"
    if found.get(MANAGED_BY) != "apollo" or not found.get(LABEL_SERVICE):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(found.items())[:8]) or "none"
        raise NotOwned(f"{what} exists and was not created by Apollo (its labels: {shown})")
    owner = found[LABEL_SERVICE] + (
        f", group {found[LABEL_GROUP]}" if found.get(LABEL_GROUP) else ""
    )
    raise NotOwned(f"{what} exists and belongs to another owner: service {owner}")


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


def collection_version(cluster: Cluster, kind: str, namespace: str) -> str:
    """The current resourceVersion of a namespace's collection, to watch from it: a list of
    at most one item (cheap however many there are)."""
    api_name, method = _LISTS[kind]
    result = _call(getattr(_apis(cluster)[api_name], method), namespace, limit=1)
    return str(result.metadata.resource_version or "")


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
    _check_pod_and_container(pod, container)
    if container:
        kwargs["container"] = container
    try:
        text = _call(_apis(cluster)["core"].read_namespaced_pod_log, pod, namespace, **kwargs)
    except KubeError:
        return []
    return str(text).splitlines()[-lines:]


# -- Live status, pod actions, logs, exec and proxy (the environment page) --------------------
# Added below the functions above without changing them: the worker and snapshots use those.

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
# A followed log quiet for this long ends; LiveTail reconnects without losing lines.
FOLLOW_READ_TIMEOUT = 600


def _check_pod_and_container(pod: str, container: str | None) -> None:
    # SECURITY: defence in depth; callers check user input first (environments.names).
    check_object_name(pod, what="pod")
    if container:
        check_container_name(container)


def read_pod(cluster: Cluster, namespace: str, name: str) -> Obj | None:
    check_object_name(name, what="pod")  # SECURITY: defence in depth (environments.names)
    try:
        obj = _call(_apis(cluster)["core"].read_namespaced_pod, name, namespace)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    return _plain(api_client(cluster), obj)


def read_replica_set(cluster: Cluster, namespace: str, name: str) -> Obj | None:
    check_object_name(name, what="ReplicaSet")
    try:
        obj = _call(_apis(cluster)["apps"].read_namespaced_replica_set, name, namespace)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    return _plain(api_client(cluster), obj)


def delete_pod(cluster: Cluster, namespace: str, name: str) -> None:
    """Delete one pod; its ReplicaSet creates the replacement (404 counts as done)."""
    check_object_name(name, what="pod")
    try:
        _call(_apis(cluster)["core"].delete_namespaced_pod, name, namespace)
    except KubeError as exc:
        if exc.status != 404:
            raise


def restart_deployment(cluster: Cluster, namespace: str, name: str, *, at: str) -> Obj:
    """What `kubectl rollout restart` does: stamp the pod template so that a rollout starts."""
    check_object_name(name, what="Deployment")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
    obj = _call(
        _apis(cluster)["apps"].patch_namespaced_deployment, name, namespace, patch,
        field_manager=FIELD_MANAGER, _content_type="application/strategic-merge-patch+json",
    )  # fmt: skip
    return _plain(api_client(cluster), obj)


def scale_deployment(cluster: Cluster, namespace: str, name: str, *, replicas: int) -> Obj:
    check_object_name(name, what="Deployment")
    obj = _call(
        _apis(cluster)["apps"].patch_namespaced_deployment_scale, name, namespace,
        {"spec": {"replicas": replicas}}, field_manager=FIELD_MANAGER,
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    return _plain(api_client(cluster), obj)


class _Stream:
    """A streamed answer (watch, log follow) that another thread may close at any moment."""

    _response: Any
    _closed: bool

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as exc:
            # A read broken by close() from another thread is a stop, not an outage.
            if not self._closed:
                raise ClusterUnreachable(_describe(exc)) from None
        finally:
            self.close()

    def close(self) -> None:
        self._closed = True
        _close_response(self._response)


class WatchStream(_Stream):
    """One watch request whose connection another thread may close (to stop it at once).

    `watch_objects` above can only stop between events; a live page must stop its watch when
    the last viewer leaves, even if nothing happens in the namespace.
    """

    def __init__(
        self,
        cluster: Cluster,
        kind: str,
        namespace: str,
        *,
        resource_version: str,
        timeout_seconds: int,
        **selectors: str,
    ) -> None:
        api_name, method = _LISTS[kind]
        self._api = api_client(cluster)
        self._closed = False
        self._response = _call_stream(
            getattr(_apis(cluster)[api_name], method), namespace, watch=True,
            resource_version=resource_version, timeout_seconds=timeout_seconds,
            allow_watch_bookmarks=True, _request_timeout=(5, timeout_seconds + 10), **selectors,
        )  # fmt: skip

    def events(self) -> Iterator[WatchEvent]:
        import json

        with self._reading():
            for line in _lines(self._response):
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    raw = event.get("object") or {}
                    if raw.get("code") == 410:
                        raise WatchExpired(str(raw.get("message", "")))
                    raise KubeError(int(raw.get("code", 500)), str(raw.get("reason")), str(raw))
                yield WatchEvent(str(event["type"]), event.get("object") or {})


def _call_stream(function: Any, *args: Any, **kwargs: Any) -> Any:
    """A call answered with a stream (watch, follow): the raw urllib3 response."""
    kwargs.setdefault("_request_timeout", TIMEOUT)
    try:
        return function(*args, _preload_content=False, **kwargs)
    except ApiException as exc:
        if exc.status == 410:
            raise WatchExpired(str(exc.reason)) from None
        raise _translate(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnreachable(_describe(exc)) from None


def _lines(response: Any) -> Iterator[str]:
    """Complete lines of a streamed response, decoded; a partial last line is kept back."""
    for batch in _batches(response):
        yield from batch


def _batches(response: Any) -> Iterator[list[str]]:
    """The complete lines of each chunk read from a streamed response, as one list."""
    pending = b""
    for chunk in response.stream(64 * 1024, decode_content=False):
        pending += chunk
        if b"\n" not in pending:
            continue
        *complete, pending = pending.split(b"\n")
        yield [raw.decode("utf-8", errors="replace") for raw in complete]
    if pending:
        yield [pending.decode("utf-8", errors="replace")]


def _close_response(response: Any) -> None:
    # Closing the socket from another thread ends a blocked read in the stream's thread.
    import contextlib

    with contextlib.suppress(Exception):
        response.shutdown()
    with contextlib.suppress(Exception):
        response.close()
    with contextlib.suppress(Exception):
        response.release_conn()


class LogStream(_Stream):
    """A pod's log as it is written (follow) or as it is (not follow), line by line."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        pod: str,
        *,
        container: str | None,
        tail_lines: int | None,
        since_seconds: int | None = None,
        timestamps: bool = True,
        previous: bool = False,
        follow: bool = True,
    ) -> None:
        _check_pod_and_container(pod, container)
        kwargs: dict[str, Any] = {
            "follow": follow, "timestamps": timestamps, "previous": previous,
            "_request_timeout": (5, FOLLOW_READ_TIMEOUT) if follow else TIMEOUT,
        }  # fmt: skip
        if container:
            kwargs["container"] = container
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if since_seconds is not None:
            kwargs["since_seconds"] = since_seconds
        self._closed = False
        self._response = _call_stream(
            _apis(cluster)["core"].read_namespaced_pod_log, pod, namespace, **kwargs
        )

    def lines(self) -> Iterator[str]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[str]]:
        """Lines as they arrive, a list per network read (cheaper than one by one)."""
        with self._reading():
            yield from _batches(self._response)


EXEC_STDOUT, EXEC_STDERR, EXEC_ERROR, EXEC_RESIZE = 1, 2, 3, 4


class ExecSession:
    """An exec websocket to a container (a blocking WSClient): use it from one thread only.

    Raises KubeError(403) when the cluster's credentials may not create pods/exec.
    """

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        pod: str,
        *,
        container: str,
        command: list[str],
        tty: bool = True,
    ) -> None:
        _check_pod_and_container(pod, container)
        from kubernetes.stream import stream

        core = client.CoreV1Api(api_client(cluster))
        try:
            self._ws = stream(
                core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                command=command, stdin=True, stdout=True, stderr=True, tty=tty,
                _preload_content=False,
            )  # fmt: skip
        except ApiException as exc:
            raise _translate_handshake(exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterUnreachable(_describe(exc)) from None

    def read(self, timeout: float) -> tuple[str, str | None]:
        """Output that arrived within timeout, and the error channel's Status JSON (or None)."""
        self._ws.update(timeout=timeout)
        output = self._ws.read_channel(EXEC_STDOUT) + self._ws.read_channel(EXEC_STDERR)
        status = self._ws.read_channel(EXEC_ERROR)
        return output, (status or None)

    def is_open(self) -> bool:
        return bool(self._ws.is_open())

    def write(self, data: str) -> None:
        self._ws.write_stdin(data)

    def resize(self, *, cols: int, rows: int) -> None:
        import json

        self._ws.write_channel(EXEC_RESIZE, json.dumps({"Width": cols, "Height": rows}))

    def close(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self._ws.close()


def _translate_handshake(exc: ApiException) -> Exception:
    # The websocket client reports a refused upgrade as status 0 with the HTTP status in words:
    # "Handshake status 403 Forbidden -+-+- {headers} -+-+- b'{...Status...}'".
    import json
    import re

    text = str(exc.reason or "")
    found = re.search(r"Handshake status (\d{3})", text)
    if not found:
        return ClusterUnreachable(text[:300])
    status = int(found.group(1))
    message = re.search(r'"message":\s*"((?:[^"\\]|\\.)*)"', text)
    detail = json.loads(f'"{message.group(1)}"') if message else text[:300]
    if status >= 500:
        return ClusterUnreachable(f"API server answered {status}: {detail}")
    return KubeError(status, "Forbidden" if status == 403 else "Error", detail)


@dataclass(frozen=True)
class ProxyResponse:
    status: int
    content_type: str
    body: bytes


def proxy_pod(
    cluster: Cluster,
    namespace: str,
    pod: str,
    *,
    port: int,
    path: str,
    method: str,
    body: Any,
    query: list[tuple[str, str]],
    max_bytes: int,
) -> ProxyResponse:
    """One request through the API server's pod proxy (pods/{name}:{port}/proxy/{path}).

    body is JSON-serialisable (sent as application/json) or None. At most max_bytes + 1 bytes
    of the answer are read, so that the caller can refuse an oversized one.
    """
    from urllib.parse import quote

    check_object_name(pod, what="pod")
    api = api_client(cluster)
    resource = (
        f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}:{port}"
        f"/proxy/{quote(path.lstrip('/'), safe='/!*:=,@;')}"
    )
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        method_, url, headers_out, body_out, _ = api.param_serialize(
            method, resource, query_params=query or None, header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )  # fmt: skip
        response = api.call_api(
            method_, url, header_params=headers_out, body=body_out, _request_timeout=TIMEOUT
        )
        raw = response.response
        try:
            data = raw.read(max_bytes + 1)
        finally:
            raw.release_conn()
    except ApiException as exc:
        raise _translate(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnreachable(_describe(exc)) from None
    return ProxyResponse(int(response.status), str(raw.headers.get("Content-Type", "")), data)
