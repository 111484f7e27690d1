"""Container logs, generated on demand.

Each container run is a `LogRun`: line i of a run is written at `start + i / rate`, and its text
is a pure function of (pod, container, run, i). Nothing is stored, so a container can "write"
tens of thousands of lines per second; the ring buffer is the rule that only the last
`buffer` lines of a run can be read.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

from kubesim.meta import iso_nano

_PATHS = (
    "/api/orders",
    "/api/users",
    "/api/cart",
    "/healthz",
    "/api/search",
    "/metrics",
    "/api/payments",
    "/static/app.js",
    "/api/inventory",
    "/login",
)
_METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
_STATUS = (200, 200, 200, 200, 201, 204, 304, 400, 404, 500)
_LEVELS = ("INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR")


@dataclass
class LogRun:
    pod: str
    container: str
    image: str
    start: float
    rate: float
    buffer: int
    end: float | None = None
    exit_code: int | None = None
    head: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.head = [
            f"INFO  [{self.pod}] starting {self.container} ({self.image})",
            f"INFO  [{self.pod}] configuration loaded from /etc/app/config.yaml",
            f"INFO  [{self.pod}] listening on 0.0.0.0:8080",
        ]

    def line(self, index: int) -> str:
        if index < len(self.head):
            return self.head[index]
        n = index - len(self.head)
        level = _LEVELS[(n * 7 + 3) % len(_LEVELS)]
        path = _PATHS[(n * 13 + 5) % len(_PATHS)]
        status = _STATUS[(n * 11 + 1) % len(_STATUS)]
        method = _METHODS[(n * 5) % len(_METHODS)]
        millis = (n * 37) % 250 + 1
        return (
            f"{level:<5} [{self.pod}] {method} {path}/{n % 9973} status={status} "
            f"duration={millis}ms request_id={n:08x}"
        )

    def time_of(self, index: int) -> float:
        if index < len(self.head) or self.rate <= 0:
            return self.start
        return self.start + (index - len(self.head) + 1) / self.rate

    def count_at(self, now: float) -> int:
        """Lines written by `now` (the final crash line included once the run ended)."""
        until = now if self.end is None else min(now, self.end)
        generated = 0 if self.rate <= 0 else max(math.floor((until - self.start) * self.rate), 0)
        return len(self.head) + generated + (1 if self.ended_by(now) and self.exit_code else 0)

    def ended_by(self, now: float) -> bool:
        return self.end is not None and now >= self.end

    def text(self, index: int) -> str:
        generated = (
            0
            if self.rate <= 0 or self.end is None
            else max(math.floor((self.end - self.start) * self.rate), 0)
        )
        if self.exit_code and index == len(self.head) + generated:
            return (
                f"FATAL [{self.pod}] unrecoverable error: connection to database refused; "
                f"exiting with code {self.exit_code}"
            )
        return self.line(index)

    def stamp(self, index: int) -> float:
        if self.end is not None and index >= self.count_at(self.end) - 1 and self.exit_code:
            return self.end
        return self.time_of(index)


@dataclass
class LogQuery:
    tail: int | None = None
    since_seconds: float | None = None
    since_time: float | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


def first_index(run: LogRun, query: LogQuery, now: float) -> int:
    count = run.count_at(now)
    first = max(count - run.buffer, 0)
    since = query.since_time
    if query.since_seconds is not None:
        since = now - query.since_seconds
    if since is not None and since > run.start:
        # Generated line i is stamped start + (i - head + 1) / rate.
        if run.rate <= 0:
            first = count
        else:
            first = max(first, len(run.head) - 1 + math.ceil((since - run.start) * run.rate))
    if query.tail is not None:
        first = max(first, count - query.tail)
    return min(first, count)


def render(run: LogRun, start: int, stop: int, timestamps: bool) -> bytes:
    if timestamps:
        return "".join(
            f"{iso_nano(run.stamp(i))} {run.text(i)}\n" for i in range(start, stop)
        ).encode()
    return "".join(f"{run.text(i)}\n" for i in range(start, stop)).encode()


class LogBook:
    """Runs per (pod uid, container); the last is current, the one before is `previous`."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], list[LogRun]] = {}
        self.changed: dict[str, asyncio.Event] = {}

    def start(self, uid: str, run: LogRun) -> None:
        runs = self.runs.setdefault((uid, run.container), [])
        runs.append(run)
        del runs[:-2]  # the kubelet keeps the current and the previous container's logs only
        self.notify(uid)

    def stop(self, uid: str, container: str, exit_code: int | None) -> None:
        runs = self.runs.get((uid, container))
        if runs and runs[-1].end is None:
            runs[-1].end = time.time()
            runs[-1].exit_code = exit_code
        self.notify(uid)

    def forget(self, uid: str) -> None:
        for key in [k for k in self.runs if k[0] == uid]:
            del self.runs[key]
        self.notify(uid)

    def notify(self, uid: str) -> None:
        event = self.changed.pop(uid, None)
        if event is not None:
            event.set()

    def wait_event(self, uid: str) -> asyncio.Event:
        return self.changed.setdefault(uid, asyncio.Event())

    def current(self, uid: str, container: str) -> LogRun | None:
        runs = self.runs.get((uid, container))
        return runs[-1] if runs else None

    def previous(self, uid: str, container: str) -> LogRun | None:
        runs = self.runs.get((uid, container))
        return runs[-2] if runs and len(runs) > 1 else None
