"""GET pods/{name}/log with tailLines, sinceSeconds, sinceTime, timestamps, previous, limitBytes
and follow."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import web

from kubesim import resources as R
from kubesim.cluster import Cluster
from kubesim.errors import ApiError, bad_request
from kubesim.http import STREAMING
from kubesim.logs import LogBook, LogQuery, LogRun, first_index, render
from kubesim.meta import parse_iso

JSON = dict[str, Any]


def pick_container(pod: JSON, requested: str | None) -> str:
    """Resolve the container like the real server, with its 400 messages."""
    name = pod["metadata"]["name"]
    containers = [str(c["name"]) for c in pod.get("spec", {}).get("containers", [])]
    if requested:
        if requested not in containers:
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return containers[0]
    default = pod["metadata"].get("annotations", {}).get("kubectl.kubernetes.io/default-container")
    if default in containers:
        return str(default)
    raise bad_request(
        f"a container name must be specified for pod {name}, choose one of: "
        f"[{' '.join(containers)}]"
    )


def _waiting_message(pod: JSON, container: str) -> str:
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            reason = cs.get("state", {}).get("waiting", {}).get("reason")
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                return "trying and failing to pull image"
            if reason:
                return str(reason)
    return "ContainerCreating"


def _query(request: web.Request) -> LogQuery:
    q = request.query
    try:
        return LogQuery(
            tail=int(q["tailLines"]) if q.get("tailLines") not in (None, "", "-1") else None,
            since_seconds=float(q["sinceSeconds"]) if q.get("sinceSeconds") else None,
            since_time=parse_iso(q["sinceTime"]) if q.get("sinceTime") else None,
            timestamps=q.get("timestamps") in ("true", "1"),
            limit_bytes=int(q["limitBytes"]) if q.get("limitBytes") else None,
        )
    except ValueError as exc:
        raise bad_request(f"invalid log options: {exc}") from exc


class LogHandler:
    def __init__(self, cluster: Cluster, book: LogBook) -> None:
        self.cluster = cluster
        self.book = book

    def _run(self, pod: JSON, container: str, previous: bool) -> LogRun:
        uid = pod["metadata"]["uid"]
        name = pod["metadata"]["name"]
        if previous:
            run = self.book.previous(uid, container)
            if run is None:
                raise bad_request(
                    f'previous terminated container "{container}" in pod "{name}" not found'
                )
            return run
        run = self.book.current(uid, container)
        if run is None:
            raise bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: '
                f"{_waiting_message(pod, container)}"
            )
        return run

    async def __call__(self, namespace: str, name: str, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        pod = self.cluster.api.get(R.PODS, namespace, name)
        container = pick_container(pod, request.query.get("container"))
        previous = request.query.get("previous") in ("true", "1")
        run = self._run(pod, container, previous)
        query = _query(request)
        follow = request.query.get("follow") in ("true", "1") and not previous
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        if follow:
            response.enable_chunked_encoding()
        await response.prepare(request)
        request[STREAMING] = True
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            await self._stream(request, response, pod["metadata"]["uid"], run, query, follow)
        return response

    async def _stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        uid: str,
        run: LogRun,
        query: LogQuery,
        follow: bool,
    ) -> None:
        now = time.time()
        position = first_index(run, query, now)
        budget = query.limit_bytes
        end_streams = self.cluster.end_streams
        # Without follow the answer is the log as it stood when the request arrived: lines
        # generated while it is being written would break tailLines (one line too many).
        snapshot = run.count_at(now)
        while True:
            count = run.count_at(time.time()) if follow else snapshot
            if count > position:
                stop = min(count, position + 5000)
                chunk = render(run, position, stop, query.timestamps)
                if budget is not None:
                    chunk = chunk[:budget]
                    budget -= len(chunk)
                await response.write(chunk)
                position = stop
                # Yield even when the socket buffer has room: a fast log must not starve the
                # loop, and a reader that went away must stop the stream.
                await asyncio.sleep(0)
                if request.transport is None or request.transport.is_closing():
                    return
                if budget is not None and budget <= 0:
                    return
                continue
            if (
                not follow
                or run.ended_by(time.time())
                or self.book.current(uid, run.container) is not run
            ):
                return
            if end_streams.is_set():
                return
            await self._wait(uid, run, position, end_streams)

    async def _wait(self, uid: str, run: LogRun, position: int, end_streams: asyncio.Event) -> None:
        """Sleep until the next line is due, the container changes, or streams are ended."""
        due = run.time_of(position) if run.rate > 0 else time.time() + 1.0
        delay = min(max(due - time.time(), 0.005), 0.25)
        changed = self.book.wait_event(uid)
        waiters = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(end_streams.wait())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
