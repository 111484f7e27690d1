"""The simulated cluster's shared state: settings, kinds, store, object API, images, faults."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from kubesim.allocation import Allocator
from kubesim.api import ObjectApi
from kubesim.events import EventRecorder
from kubesim.image_registry import ImageRegistry
from kubesim.kinds import Kinds, builtin_kinds
from kubesim.store import Store

JSON = dict[str, Any]


@dataclass
class Settings:
    # Seconds from pod creation to containers running (0: pods are Running and Ready at once).
    startup_delay: float = 2.0
    # Application log lines per second written by each running container.
    log_rate: float = 2.0
    # Lines kept per container (the ring buffer `tailLines`/`sinceSeconds` read from).
    log_buffer: int = 10000
    # Seconds a terminating pod takes to go away (capped by its grace period).
    stop_delay: float = 1.0
    # Base of the crash-loop back-off, doubling per restart up to crash_backoff_max.
    crash_backoff: float = 1.0
    crash_backoff_max: float = 8.0
    # Seconds a crash-looping container runs before exiting.
    crash_after: float = 1.0
    # Seconds for images with `slow` in their name to become ready.
    slow_seconds: float = 3.0
    # Seconds in ErrImagePull before the reason turns into ImagePullBackOff.
    image_pull_backoff: float = 1.0
    bookmark_interval: float = 5.0
    history_size: int = 5000
    watch_queue_size: int = 10000

    def __post_init__(self) -> None:
        self.update({k: getattr(self, k) for k in self.__dataclass_fields__})

    def to_json(self) -> JSON:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def update(self, values: JSON) -> None:
        for key, value in values.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown setting {key!r}")
            # Coerce to the declared default's type (an int 0 must not turn 0.6 into 0).
            default = self.__dataclass_fields__[key].default
            setattr(self, key, int(value) if isinstance(default, int) else float(value))


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    # Fail exactly the next N Kubernetes API requests with 503.
    fail_next: int = 0
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def set(self, values: JSON) -> None:
        for key in ("latency_ms", "error_rate", "drop_rate"):
            if key in values:
                value = float(values[key])
                if key != "latency_ms" and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{key} must be between 0 and 1")
                setattr(self, key, value)
        if "fail_next" in values:
            self.fail_next = int(values["fail_next"])
        if "seed" in values:
            self.seed = int(values["seed"])
            self.rng.seed(self.seed)

    def reset(self) -> None:
        self.latency_ms = self.error_rate = self.drop_rate = 0.0
        self.fail_next = 0
        self.rng.seed(self.seed)

    def to_json(self) -> JSON:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "drop_rate": self.drop_rate,
            "fail_next": self.fail_next,
            "seed": self.seed,
        }


class Cluster:
    def __init__(self, settings: Settings, kinds: Kinds | None = None) -> None:
        self.settings = settings
        # The kinds served, each with its strategy (kubesim/kinds/).
        self.kinds = kinds or builtin_kinds()
        self.store = Store(
            history_size=settings.history_size, watch_queue_size=settings.watch_queue_size
        )
        self.allocator = Allocator()
        self.api = ObjectApi(self.store, self.allocator, self.kinds)
        self.events = EventRecorder(self.store)
        self.images = ImageRegistry(
            default_slow_seconds=settings.slow_seconds, crash_after_seconds=settings.crash_after
        )
        self.faults = Faults()
        # Set to end every open watch and follow stream ("end all open watches now").
        self.end_streams = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Start a background task and keep a reference so it is not garbage collected."""
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def end_all_watches(self) -> int:
        watchers = self.store.all_watchers()
        for watcher in watchers:
            watcher.close()
        # Wake follow streams too; they re-arm by taking a fresh event.
        self.end_streams.set()
        self.end_streams = asyncio.Event()
        return len(watchers)
