"""Worker processes for tests: `manage.py rundeployments` in a subprocess on the test database,
as in production (signal handlers need a main thread; the worker needs nothing from the web
process), its output read line by line; and waits on a condition with a generous deadline."""

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from django.db import connection, connections

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def until(check: Callable[[], T], *, timeout: float = 30, what: str = "the condition") -> T:
    """check()'s first truthy answer, polled until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def database_url(*, port: int | None = None) -> str:
    """The test database as a DATABASE_URL for a worker process (through `port` if given)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "localhost"
    return f"postgres://{credentials}@{host}:{port or db['PORT'] or 5432}/{db['NAME']}"


class WorkerThread:
    """One worker loop in a thread of the test process (as a process of its own would run it)."""

    def __init__(self, owner: str) -> None:
        self.shutdown = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(owner,), daemon=True)
        self.thread.start()

    def _run(self, owner: str) -> None:
        from deployments.engine.worker import run_worker

        try:
            run_worker(shutdown=self.shutdown, poll_interval=0.05, owner=owner)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.shutdown.set()
        self.thread.join(timeout=30)


class WorkerProcess:
    """`manage.py rundeployments` in a subprocess; its output kept for the failure message."""

    def __init__(
        self,
        *,
        url: str | None = None,
        grace: float = 0,
        poll_interval: float = 0.1,
        env: dict[str, str] | None = None,
        **more_env: str,
    ) -> None:
        environment = {
            **os.environ,
            "DATABASE_URL": url or database_url(),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
            **more_env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rundeployments",
                "--poll-interval",
                str(poll_interval),
                "--grace",
                str(grace),
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def drain(self) -> list[str]:
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return self.output

    def finished_output(self, timeout: float = 30) -> list[str]:
        """Every line of a process that has exited: its reader has read the pipe to its end."""
        self.reader.join(timeout)
        return self.drain()

    def wait_for_line(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}; output so far: {self.output}")

    @property
    def name(self) -> str:
        """The worker's owner name, from its first line."""
        line = next((x for x in self.output if x.startswith("deployment worker ")), "")
        return line.removeprefix("deployment worker ").split(" ")[0]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        if self.alive():
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@contextlib.contextmanager
def worker_processes(count: int, **kwargs: Any) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(**kwargs) for _ in range(count)]
    try:
        for worker in started:
            worker.wait_for_line("started")
        yield started
    finally:
        for worker in started:
            if worker.alive():
                worker.process.kill()
                worker.process.wait(timeout=10)
