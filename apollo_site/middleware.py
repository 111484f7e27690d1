"""Site-wide request hygiene that no single app owns.

SECURITY: a NUL byte in the path or the query string is refused with a 400 before any view
runs. PostgreSQL cannot store or compare text containing NUL (the driver raises, the page
answered 500), and no name, id or filter of Apollo ever contains one. Form fields and API
fields already refuse NUL (Django's and DRF's CharField validators).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

NUL_MESSAGE = "The request's path or query string contains a NUL byte."


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    return any(
        "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()
    )


def _refusal(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": NUL_MESSAGE}, status=400)
    return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")


class RejectNulBytesMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        if _has_nul(request):
            return _refusal(request)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            return _refusal(request)
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response
