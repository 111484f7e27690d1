"""A websocket to a path no consumer serves raised "No route found" inside the server (a 500
and a traceback in daphne's log). It is now closed cleanly with 4404, for anybody."""

import pytest
from django.contrib.auth.models import User

from tests.security.cluster_tripwire import close_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "path", ["/ws/", "/ws/nothing/", "/ws/environments/", "/ws/deployments/x/", "/elsewhere"]
)
async def test_an_unknown_websocket_path_is_closed_with_4404(mallory: User, path: str) -> None:
    for user in (None, mallory):
        message = await close_of(path, user)
        assert message == {
            "type": "websocket.close",
            "code": 4404,
            "reason": "no websocket at this path",
        }
