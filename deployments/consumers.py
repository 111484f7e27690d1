import asyncio
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from deployments.live import (
    StatusPayload,
    batch_message,
    group_name,
    status_payload,
    timeline_message,
    visible_entry,
)
from deployments.models import Deployment
from deployments.selectors import batch_deployments, batch_state, visible_deployments
from deployments.status import Status
from permissions.services import can
from permissions.verbs import Verb

# How often a page re-reads its deployment when the channel layer cannot carry the worker's
# messages (see _layer_is_process_local).
DB_FOLLOW_SECONDS = 0.5


@database_sync_to_async  # type: ignore[untyped-decorator]
def _load_changes(deployment_id: int, seen: int) -> tuple[StatusPayload, list[Any]] | None:
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None:
        return None
    return status_payload(deployment), list(deployment.timeline[seen:])


@database_sync_to_async  # type: ignore[untyped-decorator]
def _may_view(user: Any, deployment_id: int) -> bool:
    return visible_deployments(user).filter(pk=deployment_id).exists()


@database_sync_to_async  # type: ignore[untyped-decorator]
def _may_view_logs(user: Any, deployment_id: int) -> bool:
    deployment = Deployment.objects.select_related("service", "environment").get(pk=deployment_id)
    return can(user, Verb.VIEW_LOGS, service=deployment.service, environment=deployment.environment)


def _layer_is_process_local() -> bool:
    # The in-memory layer lives in one process: the worker (another process) cannot reach the
    # pages through it, so each open page follows its row in the database instead.
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    return str(backend).endswith("InMemoryChannelLayer")


class DeploymentConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Streams a deployment's status and timeline to its page (group ``deployment.<id>``)."""

    follower: "asyncio.Task[None] | None" = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        # SECURITY: only signed-in users see deployments; refuse before accepting.
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.deployment_id = int(self.scope["url_route"]["kwargs"]["deployment_id"])
        # SECURITY: a deployment the user may not view does not exist for them (as its page).
        if not await _may_view(user, self.deployment_id):
            await self.close(code=4404)
            return
        # One read gives the first payload and where the timeline stands, so that nothing
        # written between this read and the follower's first one is lost.
        changes = await _load_changes(self.deployment_id, 0)
        if changes is None:
            await self.close(code=4404)
            return
        payload, timeline = changes
        # SECURITY: crash log lines in the timeline only for who may view logs.
        self.may_view_logs = await _may_view_logs(user, self.deployment_id)
        self.group = group_name(self.deployment_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(payload)
        if _layer_is_process_local() and not Status(payload["status"]).is_terminal:
            self.follower = asyncio.create_task(self._follow_database(payload, len(timeline)))

    async def disconnect(self, code: int) -> None:
        if self.follower is not None:
            self.follower.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def deployment_status(self, event: dict[str, Any]) -> None:
        payload = visible_entry(event["payload"], may_view_logs=self.may_view_logs)
        if payload.get("type") == "deployment.timeline":
            payload = timeline_message(payload)
        await self.send_json(payload)

    async def _follow_database(self, last: StatusPayload, seen: int) -> None:
        """Send what changed in the row until the deployment has finished."""
        while True:
            await asyncio.sleep(DB_FOLLOW_SECONDS)
            changes = await _load_changes(self.deployment_id, seen)
            if changes is None:
                return
            payload, entries = changes
            for entry in entries:
                entry = visible_entry(entry, may_view_logs=self.may_view_logs)
                await self.send_json(timeline_message(entry))
            seen += len(entries)
            if (payload["status"], payload["status_reason"]) != (
                last["status"],
                last["status_reason"],
            ):
                await self.send_json(payload)
                last = payload
            if Status(payload["status"]).is_terminal:
                return


@database_sync_to_async  # type: ignore[untyped-decorator]
def _batch_state(user: Any, batch: uuid.UUID) -> dict[str, Any] | None:
    deployments = batch_deployments(batch, user=user)
    return batch_message(batch_state(user, deployments)) if deployments else None


class BatchConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """The batch page's rows (the deployments of one Deploy request, one per group), sent again
    whenever one of them changes status. Joins every deployment's group; with the in-memory
    layer (the worker is another process) it follows the rows in the database instead."""

    follower: "asyncio.Task[None] | None" = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        # SECURITY: signed-in users only (the page's rule); the rows say what each may do.
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user, self.batch = user, self.scope["url_route"]["kwargs"]["batch"]
        state = await _batch_state(user, self.batch)
        if state is None:
            await self.close(code=4404)
            return
        self.groups = [group_name(row["id"]) for row in state["rows"]]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.last = state
        await self.send_json(state)
        # A change published between the read above and joining the groups reached nobody
        # (a verdict landing as the page opens): read again now that every later change will
        # be heard, and send the rows if they changed.
        finished = await self._send_if_changed()
        if _layer_is_process_local() and not finished:
            self.follower = asyncio.create_task(self._follow_database())

    async def disconnect(self, code: int) -> None:
        if self.follower is not None:
            self.follower.cancel()
        for group in getattr(self, "groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def deployment_status(self, event: dict[str, Any]) -> None:
        if event["payload"].get("type") != "deployment.status":
            return  # a timeline entry: the rows do not change
        await self._send_if_changed()

    async def _send_if_changed(self) -> bool:
        """Send the rows if they changed; True once every deployment has finished."""
        state = await _batch_state(self.user, self.batch)
        if state is None:
            return True
        if state != self.last:
            self.last = state
            await self.send_json(state)
        return all(row["finished"] for row in state["rows"])

    async def _follow_database(self) -> None:
        while not await self._send_if_changed():
            await asyncio.sleep(DB_FOLLOW_SECONDS)
