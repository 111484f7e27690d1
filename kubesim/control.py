"""The control API under /_kubesim/ (admin token): image behaviour, faults, settings, outages.

GET  /_kubesim/state                      settings, faults, registry, open watches (by namespace)
POST /_kubesim/images      {"image": "repo:sha", "behaviour": "ok|missing|crashloop|notready|slow",
                            "seconds": 5, "exitCode": 1, "hasBash": true, "jolokiaPort": 8778}
POST /_kubesim/registry    {"strict": true}        only registered images exist
POST /_kubesim/faults      {"latency_ms": 200, "error_rate": 0.2, "drop_rate": 0.1,
                            "fail_next": 3, "seed": 7}
POST /_kubesim/faults/reset                       clear all faults
POST /_kubesim/watches/end                        end every open watch and log follow now
POST /_kubesim/watches/expire {"next": 1}         the next N watches from a resourceVersion answer
                                                  410 Expired (compacted between list and watch)
POST /_kubesim/down        {"seconds": 2}         refuse connections, then listen again
POST /_kubesim/settings    {"startup_delay": 0, "log_rate": 100, ...}
POST /_kubesim/reset                              faults, registry and watches back to defaults
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kubesim.cluster import Cluster
from kubesim.errors import ApiError, bad_request
from kubesim.image_registry import behaviour_from_json

JSON = dict[str, Any]
DownFn = Callable[[float], Awaitable[None]]


async def _body(request: web.Request) -> JSON:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise bad_request(f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise bad_request("expected a JSON object")
    return data


class Control:
    def __init__(self, cluster: Cluster, down: DownFn) -> None:
        self.cluster = cluster
        self.down = down

    def state(self) -> JSON:
        return {
            "settings": self.cluster.settings.to_json(),
            "faults": self.cluster.faults.to_json(),
            "registry": self.cluster.images.to_json(),
            "watches": len(self.cluster.store.all_watchers()),
            "watchesByNamespace": dict(
                Counter(w.namespace or "" for w in self.cluster.store.all_watchers())
            ),
            "expireNextWatches": self.cluster.store.expire_next,
        }

    async def handle(self, request: web.Request) -> web.Response:
        action = request.path.removeprefix("/_kubesim").strip("/")
        if request.method == "GET" and action in ("", "state"):
            return web.json_response(self.state())
        if request.method != "POST":
            raise ApiError(405, "use POST for control actions")
        body = await _body(request)
        try:
            result = await self._dispatch(action, body)
        except (ValueError, TypeError, KeyError) as exc:
            raise bad_request(str(exc)) from exc
        return web.json_response(result)

    async def _dispatch(self, action: str, body: JSON) -> JSON:
        cluster = self.cluster
        if action == "images":
            image = str(body["image"])
            behaviour = behaviour_from_json(body, default_slow=cluster.settings.slow_seconds)
            cluster.images.register(image, behaviour)
            return {"image": image, "behaviour": behaviour.to_json()}
        if action == "registry":
            cluster.images.strict = bool(body.get("strict", False))
            return cluster.images.to_json()
        if action == "faults":
            cluster.faults.set(body)
            return cluster.faults.to_json()
        if action == "faults/reset":
            cluster.faults.reset()
            return cluster.faults.to_json()
        if action == "watches/end":
            return {"ended": cluster.end_all_watches()}
        if action == "watches/expire":
            cluster.store.expire_next = max(int(body.get("next", 1)), 0)
            return {"expireNextWatches": cluster.store.expire_next}
        if action == "down":
            seconds = float(body.get("seconds", 1.0))
            cluster.spawn(self.down(seconds))
            return {"down": seconds}
        if action == "settings":
            cluster.settings.update(body)
            cluster.images.default_slow_seconds = cluster.settings.slow_seconds
            cluster.images.crash_after_seconds = cluster.settings.crash_after
            return cluster.settings.to_json()
        if action == "reset":
            cluster.faults.reset()
            cluster.images.reset()
            cluster.store.expire_next = 0
            return self.state()
        raise ApiError(404, f"unknown control action {action!r}")
