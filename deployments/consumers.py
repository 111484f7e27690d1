from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from deployments.live import StatusPayload, group_name, status_payload
from deployments.models import Deployment


@database_sync_to_async  # type: ignore[untyped-decorator]
def _load_payload(deployment_id: int) -> StatusPayload | None:
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    return status_payload(deployment) if deployment is not None else None


class DeploymentConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Streams a deployment's status changes to its page (group ``deployment.<id>``)."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        # SECURITY: only signed-in users see deployments; refuse before accepting.
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.deployment_id = int(self.scope["url_route"]["kwargs"]["deployment_id"])
        payload = await _load_payload(self.deployment_id)
        if payload is None:
            await self.close(code=4404)
            return
        self.group = group_name(self.deployment_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(payload)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def deployment_status(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])
