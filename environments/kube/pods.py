"""One pod's logs (a tail or a followed stream), exec sessions (the shell) and the HTTP
proxy (Jolokia)."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from apollo_site.ops.metrics import KUBE_CALLS, KUBE_ERRORS, count_kube_call
from environments.kube.client import TIMEOUT, _apis, _call, api_client
from environments.kube.errors import ClusterUnreachable, KubeError, _describe, _translate
from environments.kube.read import _batches, _call_stream, _Stream
from environments.models import Cluster
from environments.names import check_container_name, check_object_name

Obj = dict[str, Any]


def pod_log_tail(
    cluster: Cluster,
    namespace: str,
    pod: str,
    *,
    container: str | None = None,
    lines: int = 20,
    previous: bool = False,
) -> list[str]:
    kwargs: dict[str, Any] = {"tail_lines": lines, "previous": previous}
    _check_pod_and_container(pod, container)
    if container:
        kwargs["container"] = container
    try:
        text = _call(_apis(cluster)["core"].read_namespaced_pod_log, pod, namespace, **kwargs)
    except KubeError:
        return []
    return str(text).splitlines()[-lines:]


# A followed log quiet for this long ends; LiveTail reconnects without losing lines.
FOLLOW_READ_TIMEOUT = 600


def _check_pod_and_container(pod: str, container: str | None) -> None:
    # SECURITY: defence in depth; callers check user input first (environments.names).
    check_object_name(pod, what="pod")
    if container:
        check_container_name(container)


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
            "follow": follow,
            "timestamps": timestamps,
            "previous": previous,
            "_request_timeout": (5, FOLLOW_READ_TIMEOUT) if follow else TIMEOUT,
        }
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
        verb = count_kube_call(core.connect_get_namespaced_pod_exec)
        try:
            self._ws = stream(
                core.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                container=container,
                command=command,
                stdin=True,
                stdout=True,
                stderr=True,
                tty=tty,
                _preload_content=False,
            )
        except ApiException as exc:
            KUBE_ERRORS.labels(verb).inc()
            raise _translate_handshake(exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            KUBE_ERRORS.labels(verb).inc()
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
    KUBE_CALLS.labels("proxy").inc()
    try:
        method_, url, headers_out, body_out, _ = api.param_serialize(
            method,
            resource,
            query_params=query or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(
            method_, url, header_params=headers_out, body=body_out, _request_timeout=TIMEOUT
        )
        raw = response.response
        try:
            data = raw.read(max_bytes + 1)
        finally:
            raw.release_conn()
    except ApiException as exc:
        KUBE_ERRORS.labels("proxy").inc()
        raise _translate(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        KUBE_ERRORS.labels("proxy").inc()
        raise ClusterUnreachable(_describe(exc)) from None
    return ProxyResponse(int(response.status), str(raw.headers.get("Content-Type", "")), data)
