from django.urls import path

from deployments.consumers import BatchConsumer, DeploymentConsumer

websocket_urlpatterns = [
    path("ws/deployments/<int:deployment_id>/", DeploymentConsumer.as_asgi()),
    path("ws/deployments/batch/<uuid:batch>/", BatchConsumer.as_asgi()),
]

# Environment pages (environments/): live status, LiveTail, web shell.
from environments.live.board_socket import BoardConsumer  # noqa: E402
from environments.live.consumers import StatusConsumer  # noqa: E402
from environments.live.logs import LogConsumer  # noqa: E402
from environments.live.shell import ShellConsumer  # noqa: E402

websocket_urlpatterns += [
    path("ws/environments/<str:name>/status/", StatusConsumer.as_asgi()),
    path("ws/status-board/", BoardConsumer.as_asgi()),
    path("ws/environments/<str:name>/logs/", LogConsumer.as_asgi()),
    path("ws/environments/<str:name>/pods/<str:pod>/shell/", ShellConsumer.as_asgi()),
]
