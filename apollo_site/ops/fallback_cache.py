"""The API throttles' cache: shared in Redis, this process's own while Redis is unreachable.

The throttles (permissions.throttling) count requests in Redis so that every replica shares one
count. A Redis outage made every API request answer 500 (each token check reads the count),
although Redis only holds counts. So a read or write that fails falls back to a count kept in
this process (LocMemCache) for PAUSE_SECONDS, then Redis is tried again: during an outage the
limits hold per process instead of across replicas, and requests are answered. The first failure
is logged once, and the recovery once.
"""

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PAUSE_SECONDS = 5.0


class RedisCacheWithLocalFallback(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self.local = LocMemCache(f"fallback-{id(self)}", {"TIMEOUT": params.get("TIMEOUT", 300)})
        self._lock = threading.Lock()
        self._down_until: float | None = None  # None: Redis answers

    def _use_redis(self) -> bool:
        with self._lock:
            return self._down_until is None or time.monotonic() >= self._down_until

    def _failed(self, exc: RedisError) -> None:
        with self._lock:
            first = self._down_until is None
            self._down_until = time.monotonic() + PAUSE_SECONDS
        if first:
            log.warning("the throttles' Redis is unreachable (%s): counting per process", exc)

    def _answered(self) -> None:
        with self._lock:
            was_down, self._down_until = self._down_until is not None, None
        if was_down:
            log.warning("the throttles' Redis answers again: counting across replicas")

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        if self._use_redis():
            try:
                value = super().get(key, default, version)
            except RedisError as exc:
                self._failed(exc)
            else:
                self._answered()
                return value
        return self.local.get(key, default, version)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        if self._use_redis():
            try:
                super().set(key, value, timeout, version)
            except RedisError as exc:
                self._failed(exc)
            else:
                self._answered()
                return
        self.local.set(key, value, timeout, version)
