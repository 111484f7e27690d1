"""Per-request reads of the gate: the signed-in user with the session's own statement, and one
read of the permission rows per request, shared by the request's questions.

A page asks its visibility filter (view) and the header's Deploy link (deploy) about the same
user: permissions.selectors reads that user's holdings of every verb, the services and the
environments once for the request, and forgets them when it ends.

SECURITY: nothing outlives the request, so a grant revoked takes effect on the next request.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from permissions import sessions
from permissions.selectors import reads_shared_for_one_request


class SharedPermissionReadsMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        with reads_shared_for_one_request():
            return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        # The views below run in a copy of this context (sync_to_async): they see the reads.
        with reads_shared_for_one_request():
            response: Awaitable[HttpResponse] = self.get_response(request)
            return await response


class SessionUserAuthenticationMiddleware(AuthenticationMiddleware):
    """django.contrib.auth's middleware, with request.user read by the session's own statement
    (permissions.sessions). request.auser (async views) is Django's, unchanged."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)  # Django's checks, and request.auser
        request.user = SimpleLazyObject(lambda: _cached_user(request))  # type: ignore[assignment]


def _cached_user(request: HttpRequest) -> object:
    if not hasattr(request, "_cached_user"):
        request._cached_user = sessions.get_user(request)  # type: ignore[attr-defined]
    return request._cached_user  # type: ignore[attr-defined]
