"""Who is acting in the current request, for history written far from the view.

Most history is written by a service that is handed the actor explicitly. Some changes are not:
a grant or blocker deleted because the service, environment or user it belonged to was deleted
(a database cascade). `ActorMiddleware` remembers the request so that such records still name the
person who clicked; outside a request (commands, the worker) the actor is "system".
"""

from collections.abc import Callable
from contextvars import ContextVar

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponseBase

_request: ContextVar[HttpRequest | None] = ContextVar("apollo_history_request", default=None)


def current_actor() -> User | None:
    """The authenticated user of the request being handled, or None outside a request."""
    request = _request.get()
    if request is None:
        return None
    # Read late: DRF authenticates tokens after the middleware ran and sets request.user then.
    user = getattr(request, "user", None)
    return user if isinstance(user, User) else None


class ActorMiddleware:
    """Makes the request's user available to `current_actor()` while the request is handled."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


_RECORDED = "_apollo_history_recorded"


def mark_recorded(obj: object) -> None:
    """Say that the service deleting obj has written its history (the signal must not again)."""
    setattr(obj, _RECORDED, True)


def is_recorded(obj: object) -> bool:
    return bool(getattr(obj, _RECORDED, False))
