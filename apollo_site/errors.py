"""The site's error pages: 403, 404 and 500 in the site's layout, saying what happened and
what to do next (whom to ask for which verb).

Django answers an unknown URL with its technical 404 page (every URL pattern listed) while
`DEBUG` is on, whatever `handler404` says. SECURITY: the URL list is a map of the site for
whoever guesses a wrong address, so `FriendlyNotFoundMiddleware` answers our own page instead,
with or without `DEBUG`. A 404 from a view is always ours too (`process_exception`).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader

ADMINS_SHOWN = 3


def _administrators() -> list[str]:
    """Whom to ask for a grant: a few active superusers, by name (grants are given in the admin)."""
    names = User.objects.filter(is_superuser=True, is_active=True).order_by("username")
    return list(names.values_list("username", flat=True)[:ADMINS_SHOWN])


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _page(request: HttpRequest, template: str, status: int, **context: Any) -> HttpResponse:
    body = loader.render_to_string(template, context, request=request)
    return HttpResponse(body, status=status)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403: the gate's own sentence ("bob may not deploy web in production: no grant matches")
    and whom to ask. The sentence names only what the user asked about, never other grants."""
    reason = str(exception or "") if isinstance(exception, PermissionDenied) else ""
    if _wants_json(request):
        return JsonResponse({"detail": reason or "You may not do this."}, status=403)
    return _page(
        request, "403.html", 403, reason=reason, administrators=_administrators(), path=request.path
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: never says whether the object exists but is hidden (a hidden service is a 404 too)."""
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return _page(request, "404.html", 404, administrators=_administrators())


def server_error(request: HttpRequest) -> HttpResponse:
    """500: rendered without the database (which may be what failed): no user, no names."""
    if _wants_json(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    body = loader.render_to_string("500.html", {"request_id": getattr(request, "request_id", "")})
    return HttpResponse(body, status=500)


class FriendlyNotFoundMiddleware:
    """Our 404 page instead of Django's technical one while `DEBUG` is on (see the module
    docstring). Without `DEBUG`, Django already calls `handler404`; this then does nothing."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._replace(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        return self._replace(request, await get_response(request))

    def _replace(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        # An address that matched no pattern has no resolver_match: Django's technical page.
        unresolved = getattr(request, "resolver_match", None) is None
        if settings.DEBUG and response.status_code == 404 and unresolved:
            return not_found(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if settings.DEBUG and isinstance(exception, Http404):
            return not_found(request, exception)
        return None
