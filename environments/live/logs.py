"""LiveTail (F5): follow pod logs over a websocket, ws/environments/<name>/logs/?...

Query: ``service=S[&group=G]`` (all pods of the service, lines merged and prefixed with the
pod) or ``pod=P`` (one pod; when it is replaced, the tail follows its replacements), plus
``container=C``, ``tail=N`` (last N lines first, then follow) and ``previous=1`` (the previous
container's log, which does not follow).

Each followed pod's log (kube.LogStream, follow=True) is opened by a short-lived thread, then
read by the process's one log reader (kube.LogStream.follow_in_background), which appends its
lines to one bounded buffer per tail. The consumer sends what accumulated as one message (at
most BATCH_LINES lines) every FLUSH_SECONDS while lines come; after IDLE_POLLS polls that found
nothing it waits to be woken by the next arrival: a line is sent within FLUSH_SECONDS of being
read, a busy pod costs a few dozen messages per second, not one per line, and an idle tail
costs nothing. While the viewer has paused, nothing is sent and the buffer keeps the newest
BUFFER_LINES lines; the next batch reports how many were dropped. Which pods are followed
comes from the environment's shared watch (environments.live.watcher): a tail makes no watch
of its own.
"""

import asyncio
import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AnonymousUser, User

from apollo_site.ops.metrics import LIVE_TAILS
from environments import kube
from environments.live.consumers import load_environment
from environments.live.watcher import EnvironmentWatcher, registry
from environments.models import Environment
from environments.names import InvalidName, check_container_name, check_object_name, close_reason
from environments.services import NotFound, PodTarget, find_pod, may_act_here
from permissions.services import can
from permissions.verbs import Verb

Obj = dict[str, Any]
Line = tuple[str, str, str]  # (pod, timestamp, text)
FLUSH_SECONDS = 0.02  # at least this long between two messages of a tail
IDLE_POLLS = 5  # then a tail waits to be woken by the next arrival
BATCH_LINES = 5000
BUFFER_LINES = 20_000
MAX_TAIL = 5000
RECHECK_SECONDS = 30.0  # the gate is asked again this often while a tail runs
RECONNECT_SECONDS = 1.0


def _ts_key(timestamp: str) -> tuple[str, str]:
    """RFC 3339 timestamps with any number of fraction digits, comparable as tuples."""
    seconds, _, fraction = timestamp.rstrip("Z").partition(".")
    return seconds, fraction.ljust(9, "0")


@dataclass
class TailOptions:
    service: str = ""
    group: str = ""
    pod: str = ""
    container: str = ""
    tail: int = 200
    previous: bool = False

    @classmethod
    def from_query(cls, query: bytes) -> "TailOptions":
        values = {k: v[0] for k, v in parse_qs(query.decode(errors="replace")).items() if v}
        try:
            tail = max(0, min(int(values.get("tail", 200)), MAX_TAIL))
        except ValueError:
            tail = 200
        return cls(
            service=values.get("service", ""),
            group=values.get("group", ""),
            pod=values.get("pod", ""),
            container=values.get("container", ""),
            tail=tail,
            previous=values.get("previous") in ("1", "true"),
        )


@dataclass
class LogTail:
    """The streams and the bounded buffer of one open LiveTail."""

    environment: Environment
    options: TailOptions
    # (service, group) of a pod from its owner chain: the environment's watch (pod_target).
    owner_of: Callable[[Obj], tuple[str, str] | None] = lambda pod: None
    buffer: deque[Line] = field(default_factory=lambda: deque(maxlen=BUFFER_LINES))
    dropped: int = 0
    notices: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _streams: dict[str, kube.LogStream | None] = field(default_factory=dict)
    _known: set[str] = field(default_factory=set)
    _followed_gone: bool = False
    _closed: bool = False
    # Called (from the log reader's thread) at the first arrival after arm().
    on_news: Callable[[], None] = lambda: None
    _armed: bool = False

    # -- buffer -----------------------------------------------------------------------------

    def push(self, line: Line) -> None:
        self.push_many([line])

    def push_many(self, lines: list[Line]) -> None:
        with self._lock:
            room = (self.buffer.maxlen or 0) - len(self.buffer)
            self.dropped += max(0, len(lines) - room)  # the deque drops the oldest lines
            self.buffer.extend(lines)
            news, self._armed = self._armed, False
        if news:
            self.on_news()

    def notice(self, text: str) -> None:
        with self._lock:
            self.notices.append(text)
            news, self._armed = self._armed, False
        if news:
            self.on_news()

    def arm(self) -> bool:
        """The consumer is about to wait: have the next arrival wake it (on_news). False when
        something already waits to be sent.

        Only a consumer that found nothing for IDLE_POLLS polls arms: a wake-up is a system
        call that releases the GIL, after which the reader's thread waits for it behind the
        event loop (py-spy: half of the reader's samples when every message was announced)."""
        with self._lock:
            if self.buffer or self.notices or self.dropped:
                return False
            self._armed = True
            return True

    def drain(self, limit: int = BATCH_LINES) -> tuple[list[Line], int, list[str]]:
        with self._lock:
            if len(self.buffer) <= limit:
                lines = list(self.buffer)
                self.buffer.clear()
            else:
                lines = [self.buffer.popleft() for _ in range(limit)]
            dropped, self.dropped = self.dropped, 0
            notices, self.notices = self.notices, []
        return lines, dropped, notices

    def pending(self) -> int:
        with self._lock:
            return len(self.buffer)

    # -- which pods -------------------------------------------------------------------------

    def wants(self, pod: Obj) -> bool:
        name = pod["metadata"]["name"]
        if self.options.pod and not self._followed_gone:
            return bool(name == self.options.pod)
        # SECURITY: a service's pods by their owner chain, not by a label anyone may set.
        target = self.owner_of(pod)
        if target is None or not self.options.service or target[0] != self.options.service:
            return False
        if self.options.group and target[1] != self.options.group:
            return False
        # One pod, replaced: follow the pods that appeared since, not its old siblings.
        return not self.options.pod or name not in self._known

    def on_pods(self, pods: list[Obj]) -> None:
        """Called by the environment's watch with every pod; start and stop streams."""
        if self._closed:
            return
        names = {p["metadata"]["name"] for p in pods}
        gone = self.options.pod and self.options.pod not in names
        if gone and self._known and not self._followed_gone:
            # The pod was there and is gone: follow its replacements.
            self._followed_gone = True
            self.notice(f"pod {self.options.pod} is gone; following its replacements")
        if not self._known:
            self._known = set(names)
        wanted = {p["metadata"]["name"]: p for p in pods if self.wants(p) and _started(p)}
        with self._lock:
            stop = [name for name in self._streams if name not in wanted]
            start = [name for name in wanted if name not in self._streams]
            for name in start:
                self._streams[name] = None
            stopped = [self._streams.pop(name) for name in stop]
        for stream in stopped:
            if stream is not None:
                stream.close()
        for name in stop:
            self.notice(f"stopped following {name} (pod gone)")
        for name in start:
            self._open(_Follow(name, self._container(wanted[name]), tail=self.options.tail))

    def _container(self, pod: Obj) -> str | None:
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        if self.options.container in containers:
            return self.options.container
        return containers[0] if containers else None

    # -- reading ----------------------------------------------------------------------------

    def _open(self, follow: "_Follow", delay: float = 0.0) -> None:
        thread = threading.Thread(
            target=self._open_stream, args=(follow, delay), name="log-open", daemon=True
        )
        thread.start()

    def _open_stream(self, follow: "_Follow", delay: float) -> None:
        """In a short-lived thread: open the pod's log (connection and headers wait for the
        cluster), then hand it to the process's log reader."""
        time.sleep(delay)
        while self._following(follow.pod):
            try:
                stream = kube.LogStream(
                    self.environment.cluster,
                    self.environment.namespace,
                    follow.pod,
                    container=follow.container,
                    **follow.resume_from(),
                    timestamps=True,
                    previous=False,
                    follow=True,
                )
            except (kube.KubeError, kube.ClusterUnreachable) as exc:
                if follow.first:
                    self.notice(f"{follow.pod}: {exc}")
                follow.first = False
                time.sleep(RECONNECT_SECONDS)
                continue
            follow.first = False
            if self._register(follow.pod, stream):
                stream.follow_in_background(
                    on_lines=lambda raw: self._read(follow, raw),
                    on_end=lambda error: self._ended(follow, error),
                )
            return

    def _read(self, follow: "_Follow", raw: list[str]) -> None:
        lines = follow.new_lines(raw)
        if lines:
            self.push_many(lines)

    def _ended(self, follow: "_Follow", error: Exception | None) -> None:
        if not self._following(follow.pod):
            return
        if error is not None:
            self.notice(f"{follow.pod}: log stream interrupted ({error}); resuming")
        self._open(follow, delay=RECONNECT_SECONDS)

    def _following(self, pod: str) -> bool:
        with self._lock:
            return not self._closed and pod in self._streams

    def _register(self, pod: str, stream: kube.LogStream) -> bool:
        with self._lock:
            if self._closed or pod not in self._streams:
                keep = False
            else:
                self._streams[pod], keep = stream, True
        if not keep:
            stream.close()
        return keep

    def read_previous(self, pod: str) -> None:
        """The previous container's log of one pod, once (it cannot grow)."""
        cluster, namespace = self.environment.cluster, self.environment.namespace
        try:
            container = self.options.container or None
            if container is None:
                # The API server wants a container name when a pod has several: read the
                # first one's, as following does.
                found = kube.read_pod(cluster, namespace, pod)
                container = self._container(found) if found is not None else None
            stream = kube.LogStream(
                cluster,
                namespace,
                pod,
                container=container,
                tail_lines=self.options.tail or None,
                timestamps=True,
                previous=True,
                follow=False,
            )
            for raw in stream.lines():
                timestamp, _, text = raw.partition(" ")
                self.push((pod, timestamp, text))
            self.notice(f"end of the previous container's log of {pod}")
        except (kube.KubeError, kube.ClusterUnreachable) as exc:
            self.notice(f"{pod}: {exc}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            if stream is not None:
                stream.close()


@dataclass
class _Follow:
    """Where the log of one followed pod stands, to resume it without repeating lines."""

    pod: str
    container: str | None
    tail: int
    first: bool = True
    last_line: str = ""  # the timestamp of the last line read
    last_seen: float = 0.0
    skip_until: tuple[str, str] | None = None  # set while a resumed stream repeats old lines

    def resume_from(self) -> dict[str, int | None]:
        """The first request asks for the last `tail` lines; a resumed one for the seconds
        since the last line read (sinceSeconds), whose repeated lines new_lines skips."""
        if not self.last_line:
            return {"tail_lines": self.tail if self.first else None, "since_seconds": None}
        self.skip_until = _ts_key(self.last_line)
        since = math.ceil(time.monotonic() - self.last_seen) + 2
        return {"tail_lines": None, "since_seconds": since}

    def new_lines(self, raw: list[str]) -> list[Line]:
        pod, split = self.pod, [line.partition(" ") for line in raw]
        lines = [(pod, stamp, text) for stamp, _, text in split]  # half the time of *unpacking
        if self.skip_until is not None:
            # Resumed with sinceSeconds: skip what was already sent, then stop looking.
            lines = [line for line in lines if _ts_key(line[1]) > self.skip_until]
            self.skip_until = None if lines else self.skip_until
        if lines:
            self.last_line, self.last_seen = lines[-1][1], time.monotonic()
        return lines


def _started(pod: Obj) -> bool:
    """A container has started (running or terminated): its log can be read."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return True  # still readable while it terminates
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def current_user(user: User | AnonymousUser) -> User | AnonymousUser:
    """The account as stored now. A socket keeps the user it connected with; a re-check must
    see a deactivated account or a removed superuser flag, not that stale copy."""
    if not user.is_authenticated:
        return user
    return User.objects.filter(pk=user.pk).first() or AnonymousUser()


def invalid_names(pod: str, container: str) -> str:
    """Why a pod or container name from a socket's query would be refused, or ""."""
    try:
        if pod:
            check_object_name(pod, what="pod")
        if container:
            check_container_name(container)
    except InvalidName as exc:
        return close_reason(str(exc))
    return ""


@database_sync_to_async  # type: ignore[untyped-decorator]
def may_act_somewhere(user: User | AnonymousUser, verb: Verb, environment: Environment) -> bool:
    """The pre-check asked before the cluster is (environments.services.may_act_here)."""
    return may_act_here(current_user(user), verb, environment=environment)


@database_sync_to_async  # type: ignore[untyped-decorator]
def _may_view_logs(user: User | AnonymousUser, environment: Environment, service: str) -> bool:
    from deployments.models import Service

    user = current_user(user)
    target = Service.objects.filter(name=service).first() if service else None
    if service and target is None:
        return False
    return can(user, Verb.VIEW_LOGS, service=target, environment=environment)


def _find_pod(environment: Environment, pod: str) -> PodTarget | None:
    try:
        return find_pod(environment, pod)
    except (NotFound, kube.KubeError, kube.ClusterUnreachable):
        return None


class LogConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        environment = await load_environment(self.scope["url_route"]["kwargs"]["name"])
        if environment is None:
            await self.close(code=4404)
            return
        options = TailOptions.from_query(self.scope.get("query_string", b""))
        # SECURITY: names checked, then the permission asked, before the cluster is asked.
        invalid = invalid_names(options.pod, options.container)
        if invalid:
            await self.close(code=4400, reason=invalid)
            return
        if not await may_act_somewhere(user, Verb.VIEW_LOGS, environment):
            await self.close(code=4403)
            return
        if options.pod:
            target = await asyncio.to_thread(_find_pod_sync, environment, options.pod)
            if target is None:
                await self.close(code=4404)
                return
            options.service = target.service.name if target.service else ""
            options.group = target.group
        elif not options.service:
            await self.close(code=4400)
            return
        # SECURITY: view_logs on the pod's service, asked before accepting.
        if not await _may_view_logs(user, environment, options.service):
            await self.close(code=4403)
            return
        self.user, self.environment, self.options = user, environment, options
        self.paused = False
        self.checked_at = time.monotonic()
        self.tail = LogTail(environment, options)
        self.news = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wake() -> None:  # called from the log reader's thread
            with contextlib.suppress(RuntimeError):  # the socket's loop has closed
                loop.call_soon_threadsafe(self.news.set)

        self.tail.on_news = wake
        await self.accept()
        LIVE_TAILS.inc()
        self.counted = True  # the gauge counts accepted sockets; disconnect takes it off
        await self.send_json({"type": "hello", "options": options.__dict__})
        if options.previous and options.pod:
            threading.Thread(target=self.tail.read_previous, args=(options.pod,)).start()
        else:
            self.watcher: EnvironmentWatcher = registry.acquire(environment.pk)
            self.tail.owner_of = self.watcher.pod_target
            self.watcher.add_listener(self.tail.on_pods)
        self.flusher = asyncio.create_task(self._flush_loop())

    async def disconnect(self, code: int) -> None:
        self._release()

    def _release(self) -> None:
        """Stop the tail's streams and leave the watch (once; also when the server closes)."""
        if getattr(self, "counted", False):
            LIVE_TAILS.dec()
            self.counted = False
        if hasattr(self, "flusher"):
            self.flusher.cancel()
        if hasattr(self, "tail"):
            self.tail.close()
        if hasattr(self, "watcher"):
            self.watcher.remove_listener(self.tail.on_pods)
            registry.release(self.environment.pk)
            del self.watcher

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not await self._still_allowed():
            return
        action = content.get("action") if isinstance(content, dict) else None
        if action == "pause":
            self.paused = True
        elif action == "resume":
            self.paused = False
            self.news.set()

    async def _still_allowed(self) -> bool:
        # SECURITY: a revoked grant ends an open tail (checked per action and periodically).
        self.checked_at = time.monotonic()
        if await _may_view_logs(self.user, self.environment, self.options.service):
            return True
        await self.send_json({"type": "notice", "text": "You may no longer view these logs."})
        await self.close(code=4403)
        # Not left to the client's acknowledgement of the close, which may never come.
        self._release()
        return False

    async def _flush_loop(self) -> None:
        idle = 0  # polls in a row that found nothing to send
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                due = time.monotonic() - self.checked_at > RECHECK_SECONDS
                if due and not await self._still_allowed():
                    return
                if not self.paused and await self._flush():
                    idle = 0
                    if self.tail.pending() < BATCH_LINES:  # a backlog goes on at once
                        await asyncio.sleep(FLUSH_SECONDS)  # let a busy pod's lines gather
                    continue
                idle += 1
                if idle <= IDLE_POLLS and not self.paused:  # a pause between two bursts
                    await asyncio.sleep(FLUSH_SECONDS)
                    continue
                self.news.clear()  # before arming: an arrival after arm() sets it again
                if self.paused or self.tail.arm():  # resume sets it too
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.news.wait(), timeout=RECHECK_SECONDS)

    async def _flush(self) -> bool:
        """Send what accumulated as one message; False when there was nothing."""
        lines, dropped, notices = self.tail.drain()
        if not (lines or dropped or notices):
            return False
        await self.send_json(
            {"type": "lines", "lines": lines, "dropped": dropped, "notices": notices}
        )
        return True


def _find_pod_sync(environment: Environment, pod: str) -> PodTarget | None:
    from django.db import close_old_connections

    try:
        return _find_pod(environment, pod)
    finally:
        close_old_connections()
