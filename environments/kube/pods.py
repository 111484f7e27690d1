"""One pod's logs (a tail or a followed stream), exec sessions (the shell) and the HTTP
proxy (Jolokia).

Followed logs are read by one thread per process (_LogReader), not a thread per stream: a
thread blocked in a TLS read costs about 100 KB of memory (its stack, its malloc arena, the
read buffers), which made a hundred open LiveTails cost tens of megabytes. The request is
still made by the kubernetes client (credentials, TLS, errors as everywhere else); once its
headers are in, the reader takes the socket and decodes the chunked body itself.
"""

import contextlib
import logging
import os
import selectors
import ssl
import threading
import time
from collections.abc import Callable, Iterator
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

    # Set by follow_in_background (the reader's thread reads it from then on).
    _reader: "_LogReader | None" = None
    _body: "_ChunkedBody"
    _sock: Any
    _on_lines: Callable[[list[str]], None]
    _on_end: Callable[[Exception | None], None]

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

    def follow_in_background(
        self, *, on_lines: Callable[[list[str]], None], on_end: Callable[[Exception | None], None]
    ) -> None:
        """Hand the stream to the process's log reader: on_lines(lines) as they arrive, then
        on_end(error) once: None when the log ended or close() was called, ClusterUnreachable
        when the connection broke or stayed quiet for FOLLOW_READ_TIMEOUT. Both are called in
        the reader's thread: they must be quick and must not block."""
        self._body = _ChunkedBody(chunked=bool(getattr(self._response, "chunked", False)))
        self._on_lines, self._on_end = on_lines, on_end
        self._sock = self._response.connection.sock
        _reader().add(self)

    def close(self) -> None:
        if self._reader is not None:
            # The reader's thread closes it: its selector must forget the socket first.
            self._reader.discard(self)
        else:
            super().close()

    def _read_available(self, budget: int) -> tuple[list[str], bool]:
        """The complete lines readable now without blocking (at most about budget bytes), and
        whether the body has ended. Called by the reader's thread only."""
        fp = self._response._fp.fp  # http.client's buffered reader: may hold the first bytes
        data = bytearray()
        ended = False
        while len(data) < budget:
            try:
                chunk = fp.read1(256 * 1024)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            if chunk is None:
                break
            if not chunk:
                ended = True
                break
            data += chunk
        lines, done = self._body.feed(bytes(data))
        if ended or done:
            lines += self._body.rest()
        return lines, ended or done


class _ChunkedBody:
    """Decodes an HTTP/1.1 chunked body (or a plain one) fed in pieces into complete lines."""

    def __init__(self, *, chunked: bool) -> None:
        self.chunked = chunked
        self.raw = b""  # undecoded bytes (chunk framing)
        self.left = 0  # bytes of the current chunk still to come (then its CRLF)
        self.pending = b""  # the start of a line not complete yet
        self.done = False

    def feed(self, data: bytes) -> tuple[list[str], bool]:
        """The lines completed by data, and whether the chunked body has ended."""
        body = self._dechunk(data) if self.chunked else data
        complete, newline, self.pending = (self.pending + body).rpartition(b"\n")
        # Decoded at once, then split (a newline byte is never part of a UTF-8 sequence).
        lines = complete.decode("utf-8", errors="replace").split("\n") if newline else []
        return lines, self.done

    def rest(self) -> list[str]:
        """A last line without its newline, at the end of the body."""
        rest, self.pending = self.pending, b""
        return [rest.decode("utf-8", errors="replace")] if rest else []

    def _dechunk(self, data: bytes) -> bytes:
        # An offset into the bytes, not slices of what remains: a busy log's read holds
        # hundreds of small chunks, and re-slicing made decoding quadratic (py-spy: over half
        # of the log reader's time at 100k lines/s).
        raw, at, parts = self.raw + data, 0, []
        while not self.done:
            if self.left > 0:
                take = raw[at : at + self.left]
                parts.append(take)
                self.left -= len(take)
                at += len(take)
                if self.left > 0:
                    break
                self.left = -2  # the chunk's CRLF comes next
            if self.left == -2:
                if len(raw) - at < 2:
                    break
                at, self.left = at + 2, 0
            end = raw.find(b"\r\n", at)
            if end < 0:
                break
            size = int(raw[at:end].split(b";")[0], 16)
            at = end + 2
            self.left = size
            self.done = size == 0  # trailers, if any, are not read
        self.raw = raw[at:]
        return b"".join(parts)


# Ends a stream whose server sent nothing for this long (a connection that died silently).
_QUIET_CHECK_SECONDS = 5.0
# Bytes read from one stream before the others get their turn.
_READ_BUDGET = 1024 * 1024
log = logging.getLogger(__name__)


class _LogReader:
    """One thread that reads every followed log of the process (a selector over their sockets).

    Streams come and go through a queue and a wake-up socket, so that the selector and the
    sockets are only ever touched by the reader's thread (an fd closed elsewhere while still
    registered could be reused by the next stream).
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = _socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._added: list[LogStream] = []
        self._discarded: list[LogStream] = []
        self._last_read: dict[LogStream, float] = {}
        self._again: set[LogStream] = set()
        self._checked_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="log-reader", daemon=True)
        self._thread.start()

    def add(self, stream: LogStream) -> None:
        stream._reader = self
        with self._lock:
            self._added.append(stream)
        self._wake()

    def discard(self, stream: LogStream) -> None:
        with self._lock:
            self._discarded.append(stream)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_w.send(b"x")

    def _run(self) -> None:
        while True:
            try:
                self._turn()
            except Exception:  # never let one surprise stop every log of the process
                log.exception("log reader")
                time.sleep(0.1)

    def _turn(self) -> None:
        timeout = 0.0 if self._again else (_QUIET_CHECK_SECONDS if self._last_read else None)
        ready = [key.data for key, _ in self._selector.select(timeout) if key.data]
        self._changes()
        for stream in {*ready, *self._again}:
            if stream in self._last_read:
                self._read(stream)
        self._end_quiet()

    def _changes(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        with self._lock:
            added, self._added = self._added, []
            discarded, self._discarded = self._discarded, []
        for stream in added:
            try:
                stream._sock.setblocking(False)
                self._selector.register(stream._sock, selectors.EVENT_READ, stream)
            except (OSError, ValueError, KeyError) as exc:
                self._finish(stream, ClusterUnreachable(_describe(exc)), registered=False)
                continue
            self._last_read[stream] = time.monotonic()
            self._again.add(stream)  # bytes may already wait in the client's buffer
        for stream in discarded:
            if stream in self._last_read:
                self._finish(stream, None)
            else:
                _Stream.close(stream)

    def _read(self, stream: LogStream) -> None:
        self._again.discard(stream)
        try:
            lines, ended = stream._read_available(_READ_BUDGET)
        except (OSError, ValueError, AttributeError, urllib3.exceptions.HTTPError) as exc:
            self._finish(stream, None if stream._closed else ClusterUnreachable(_describe(exc)))
            return
        self._last_read[stream] = time.monotonic()
        if lines:
            _callback(stream._on_lines, lines)
        if ended:
            self._finish(stream, None)
        elif stream._sock.pending():
            self._again.add(stream)  # decrypted bytes wait in TLS: select would not say so

    def _end_quiet(self) -> None:
        if time.monotonic() - self._checked_at < _QUIET_CHECK_SECONDS:
            return
        self._checked_at = time.monotonic()
        limit = self._checked_at - FOLLOW_READ_TIMEOUT
        for stream in [s for s, at in self._last_read.items() if at < limit]:
            self._finish(stream, ClusterUnreachable(f"no log line for {FOLLOW_READ_TIMEOUT} s"))

    def _finish(
        self, stream: LogStream, error: Exception | None, *, registered: bool = True
    ) -> None:
        if registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(stream._sock)
        self._last_read.pop(stream, None)
        self._again.discard(stream)
        _Stream.close(stream)
        _callback(stream._on_end, error)


def _callback(function: Callable[[Any], None], argument: Any) -> None:
    try:
        function(argument)
    except Exception:  # a listener's bug must not stop every other stream of the process
        log.exception("log stream callback failed")


def _socketpair() -> tuple[Any, Any]:
    import socket

    read, write = socket.socketpair()
    read.setblocking(False)
    write.setblocking(False)
    return read, write


_readers: dict[int, _LogReader] = {}
_readers_lock = threading.Lock()


def _reader() -> _LogReader:
    """The process's reader, started on first use (again in a forked child)."""
    with _readers_lock:
        reader = _readers.get(os.getpid())
        if reader is None:
            reader = _readers[os.getpid()] = _LogReader()
        return reader


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
