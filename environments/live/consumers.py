"""The environment page's live status socket: ws/environments/<name>/status/.

Holders of `view` in the environment may watch the status, which shows only the services they
may view; the action buttons in the rendered partial follow the viewer's permissions, and each
action re-checks.
"""

import asyncio
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AnonymousUser, User
from django.template.loader import render_to_string

from environments.live.actions import ServiceGate, row_controls, viewer_gate
from environments.live.watcher import EnvironmentWatcher, group_name, registry
from environments.models import Environment
from permissions.selectors import visibility, visible_service_names

PERMISSIONS_TTL = 60.0  # seconds a viewer's button permissions are reused before re-asking
Perms = dict[str, ServiceGate]


@database_sync_to_async  # type: ignore[untyped-decorator]
def load_environment(name: str) -> Environment | None:
    return Environment.objects.select_related("cluster").filter(name=name).first()


@database_sync_to_async  # type: ignore[untyped-decorator]
def viewable(user: User | AnonymousUser, environment: Environment) -> tuple[bool, set[str] | None]:
    """Whether the user may view the environment, and the service names they may view there."""
    if not visibility(user).sees(service_id=None, environment_id=environment.pk):
        return False, set()
    return True, visible_service_names(user, environment)


@database_sync_to_async  # type: ignore[untyped-decorator]
def service_permissions(
    user: User | AnonymousUser, environment: Environment, names: set[str]
) -> Perms:
    """Which action controls the user sees, per service, and why one is disabled
    (environments.live.actions): one read of the gate per verb, whatever the number of
    services; the reasons only for what is refused."""
    return viewer_gate(user, environment, names)


def visible_state(state: dict[str, Any], names: set[str] | None) -> dict[str, Any]:
    """The state with only the services (and their pods) the viewer may view; None: all."""
    if names is None:
        return state
    return {**state, "services": [e for e in state["services"] if e["service"] in names]}


def render_state(state: dict[str, Any], environment: Environment, perms: Perms) -> str:
    return render_to_string(
        "environments/_services.html",
        {
            "state": state,
            "environment": environment,
            "rows": [
                {
                    "entry": entry,
                    "controls": row_controls(entry, perms.get(entry["service"]), environment),
                }
                for entry in state["services"]
            ],
        },
    )


def board_message(state: dict[str, Any]) -> dict[str, Any]:
    """What a status-board cell shows of the live state (no action, hence no permission beyond
    `view`, which visible_state has applied)."""
    return {
        "type": "environment.board",
        "environment": state["environment"],
        "reachable": state["reachable"],
        "updated_at": state["updated_at"],
        "services": [
            {
                "key": entry["key"],
                "sha": entry["short_sha"],
                "ready": entry["ready"],
                "desired": entry["desired"],
                "drifted": bool(entry.get("drifted")),
                "deploying": entry.get("in_progress_id") is not None,
            }
            for entry in state["services"]
        ],
    }


class StatusConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        user = self.scope.get("user")
        # SECURITY: signed-in users only; refused before accepting.
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        environment = await load_environment(self.scope["url_route"]["kwargs"]["name"])
        if environment is None:
            await self.close(code=4404)
            return
        # SECURITY: an environment the user may not view does not exist for them (as its page).
        visible, self.names = await viewable(user, environment)
        if not visible:
            await self.close(code=4404)
            return
        self.user = user
        self.environment = environment
        self.perms: Perms = {}
        self.perms_at = 0.0
        self.decided: set[str] = set()  # service names self.names has been computed for
        self.group = group_name(environment.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.watcher: EnvironmentWatcher = registry.acquire(environment.pk)
        # Another process may be the one watching (Redis): its latest state is kept in Redis.
        state = await asyncio.to_thread(self.watcher.current_state)
        if state is not None:
            await self._send_state(state)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if hasattr(self, "watcher"):
            registry.release(self.environment.pk)
            del self.watcher

    async def environment_state(self, event: dict[str, Any]) -> None:
        await self._send_state(event["state"])

    async def _send_state(self, state: dict[str, Any]) -> None:
        if time.monotonic() - self.perms_at > PERMISSIONS_TTL:
            self.perms, self.perms_at, self.decided = {}, time.monotonic(), set()
        running = {entry["service"] for entry in state["services"]}
        if self.names is not None and running - self.decided:
            # A service the viewer has not been decided on yet (deployed since the socket
            # opened, or the TTL ran out): ask which of them they may view, once.
            _, self.names = await viewable(self.user, self.environment)
            self.decided |= running
        state = visible_state(state, self.names)
        names = {entry["service"] for entry in state["services"]}
        missing = names - self.perms.keys()
        if missing:
            self.perms.update(await service_permissions(self.user, self.environment, missing))
        await self.send_json(
            {
                "type": "environment.state",
                "reachable": state["reachable"],
                "error": state["error"],
                "updated_at": state["updated_at"],
                "html": render_state(state, self.environment, self.perms),
            }
        )
