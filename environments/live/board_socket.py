"""The status board's live socket: ws/status-board/, one socket for the whole board.

The board used to open one environment status socket per column (fifty environments, fifty
sockets). This one follows every environment the board shows: it joins each environment's
group and takes a share of its watch (environments.live.watcher.registry), so that health and
drift reach every column while the board is open, not only the environments someone else
happens to watch. It sends `environment.board` messages (environments.live.consumers'
board_message), one per environment and state.

SECURITY: signed-in users only; only environments the user may view (an `?environment=` the
user may not view, or that does not exist, is simply not followed: the same answer for both),
and in each only the services they may view there.
"""

import asyncio
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AnonymousUser, User

from deployments.models import Service
from environments.live.consumers import board_message, visible_state
from environments.live.watcher import group_name, registry
from environments.models import Environment
from permissions.selectors import visibility, visible_service_names

Names = set[str] | None  # the service names the viewer may view; None: every name


@database_sync_to_async  # type: ignore[untyped-decorator]
def followed(user: User | AnonymousUser, only: str) -> dict[int, tuple[str, Names]]:
    """Environment id -> (name, service names the user may view there): the environments of
    the board (all the user may view, or the one named), in a fixed number of queries."""
    seen = visibility(user)
    environments = Environment.objects.only("name")
    if not seen.everything:
        environments = environments.filter(pk__in=sorted(seen.environment_ids))
    if only:
        environments = environments.filter(name=only)
    if seen.everything:
        return {e.pk: (e.name, None) for e in environments}
    service_names = dict(
        Service.objects.filter(pk__in=sorted(seen.service_ids)).values_list("pk", "name")
    )
    return {
        e.pk: (e.name, {service_names[s] for s in seen.services_in(e.pk) if s in service_names})
        for e in environments
    }


@database_sync_to_async  # type: ignore[untyped-decorator]
def names_in(user: User | AnonymousUser, environment_id: int) -> Names:
    environment = Environment.objects.filter(pk=environment_id).first()
    return set() if environment is None else visible_service_names(user, environment)


class BoardConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        user = self.scope.get("user")
        # SECURITY: signed-in users only; refused before accepting.
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.user = user
        self.environments = await followed(user, (query.get("environment") or [""])[0])
        self.by_name = {name: pk for pk, (name, _) in self.environments.items()}
        self.decided: dict[int, set[str]] = {pk: set() for pk in self.environments}
        self.acquired: list[int] = []
        for pk in self.environments:
            await self.channel_layer.group_add(group_name(pk), self.channel_name)
        await self.accept()
        watchers = []
        for pk in self.environments:
            watchers.append(registry.acquire(pk))
            self.acquired.append(pk)
        # Another process may be the one watching (Redis): its latest state is kept there.
        states = await asyncio.gather(*(asyncio.to_thread(w.current_state) for w in watchers))
        for state in states:
            if state is not None:
                await self._send_state(state)

    async def disconnect(self, code: int) -> None:
        for pk in getattr(self, "environments", {}):
            await self.channel_layer.group_discard(group_name(pk), self.channel_name)
        for pk in getattr(self, "acquired", []):
            registry.release(pk)
        self.acquired = []

    async def environment_state(self, event: dict[str, Any]) -> None:
        await self._send_state(event["state"])

    async def _send_state(self, state: dict[str, Any]) -> None:
        pk = self.by_name.get(state["environment"])
        if pk is None:
            return
        name, names = self.environments[pk]
        running = {entry["service"] for entry in state["services"]}
        if names is not None and running - self.decided[pk]:
            # A service the viewer has not been decided on yet (deployed since the socket
            # opened): ask which of them they may view, once.
            names = await names_in(self.user, pk)
            self.environments[pk] = (name, names)
            self.decided[pk] |= running
        await self.send_json(board_message(visible_state(state, names)))
