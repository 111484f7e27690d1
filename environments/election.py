"""Which Apollo process watches an environment, when several share a Redis channel layer.

Every process that has viewers of an environment holds an `EnvironmentWatcher`, but only the one
holding the environment's lease in Redis watches the cluster and publishes its status to the
channel-layer group; the others' viewers receive those messages like local ones. The lease is a
key set with NX and a time to live (redis-py's `Lock`), renewed by its holder every third of
that time and deleted (only by its holder, compared by token) when the holder's last viewer
leaves. A holder that dies stops renewing; another process takes the lease within
LEASE_SECONDS. The holder also keeps the latest status under a second key so that a viewer
arriving at another process sees the state at once rather than at the next publish.

Without Redis (the in-memory channel layer, one process) there is nothing to elect: `lease_for`
returns None and every watcher leads.
"""

import contextlib
import json
import logging
import uuid
from functools import lru_cache
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)
LEASE_SECONDS = 6.0
STATE_SECONDS = 30


@lru_cache(maxsize=1)
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def _prefix() -> str:
    return str(getattr(settings, "APOLLO_REDIS_PREFIX", "apollo"))


def _redis_url() -> str | None:
    url = getattr(settings, "APOLLO_REDIS_URL", None)
    return str(url) if url else None


class Lease:
    """One process's claim to watch one environment for everybody."""

    def __init__(self, client: Any, environment_id: int) -> None:
        from redis.lock import Lock

        self.client = client
        self.key = f"{_prefix()}:envwatch:{environment_id}"
        self.state_key = f"{_prefix()}:envstate:{environment_id}"
        self.token = uuid.uuid4().hex
        # redis-py's Lock does what the election needs: SET NX PX with our token, a renewal
        # (reacquire) and a release that compare the token in Redis, so a holder never renews
        # or deletes a successor's lease. Not thread-local: the lead loop's thread renews and
        # releases what it acquired, and tests read the token from another thread.
        self._lock = Lock(client, self.key, timeout=LEASE_SECONDS, thread_local=False)

    def acquire(self) -> bool:
        return bool(self._lock.acquire(blocking=False, token=self.token))

    def renew(self) -> bool:
        """Reset the time to live; False when the lease is no longer ours (expired or taken)."""
        from redis.exceptions import LockError

        try:
            return bool(self._lock.reacquire())
        except LockError:
            return False

    def release(self) -> None:
        from redis.exceptions import LockError

        # A lease that expired or passed to another process is not ours to delete.
        with contextlib.suppress(LockError):
            self._lock.release()

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def save_state(self, state: dict[str, Any]) -> None:
        self.client.set(self.state_key, json.dumps(state), ex=STATE_SECONDS)

    def forget_state(self) -> None:
        self.client.delete(self.state_key)

    def load_state(self) -> dict[str, Any] | None:
        raw = self.client.get(self.state_key)
        if raw is None:
            return None
        try:
            state = json.loads(raw)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None


def load_states(environment_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The statuses the watching processes keep for these environments, in one round trip
    (MGET; the status board asks for every environment of its page: 20 GETs were 1.2 ms). None
    kept, an expired or unreadable one, or no Redis at all: the environment is left out."""
    url = _redis_url()
    if url is None or not environment_ids:
        return {}
    keys = [f"{_prefix()}:envstate:{environment_id}" for environment_id in environment_ids]
    states = {}
    for environment_id, raw in zip(environment_ids, _client(url).mget(keys), strict=True):
        try:
            state = json.loads(raw) if raw is not None else None
        except ValueError:
            continue
        if isinstance(state, dict):
            states[environment_id] = state
    return states


def lease_for(environment_id: int) -> Lease | None:
    """The environment's lease in Redis, or None when Apollo runs without Redis."""
    url = _redis_url()
    if url is None:
        return None
    return Lease(_client(url), environment_id)
