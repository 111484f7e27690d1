import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")
# Django must be set up before importing consumers (they import models).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from apollo_site.routing import websocket_urlpatterns  # noqa: E402
from apollo_site.websockets import SameOriginValidator, UnknownRouteConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # SECURITY: origin check first (cross-site websocket hijacking: scheme, host and port,
        # see apollo_site.websockets), then the session user. An unknown path closes cleanly.
        "websocket": SameOriginValidator(
            AuthMiddlewareStack(
                URLRouter([*websocket_urlpatterns, re_path(r"", UnknownRouteConsumer.as_asgi())])
            )
        ),
    }
)
