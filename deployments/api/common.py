"""What every Apollo API view shares: the body size limit and the version-registration right."""

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import APIException, NotAuthenticated, ParseError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.services.versions import can_register_versions

# API bodies are a few hundred bytes of JSON; a commit message is the largest field.
MAX_BODY_BYTES = 64 * 1024


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB."
    default_code = "request_too_large"


class ApolloAPIView(APIView):
    """An APIView that refuses large bodies with a JSON 413 before anything reads them."""

    max_body_bytes = MAX_BODY_BYTES

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        # SECURITY: DRF's JSON parser reads the whole body into memory; refuse by the declared
        # length before it does. Servers only pass on as many bytes as CONTENT_LENGTH says.
        if length > self.max_body_bytes:
            raise RequestTooLarge()

    def handle_exception(self, exc: Exception) -> Response:
        # Django's own DATA_UPLOAD_MAX_MEMORY_SIZE check raises a SuspiciousOperation that
        # would otherwise become an HTML 400; answer in JSON like every other API error.
        if isinstance(exc, RequestDataTooBig):
            exc = RequestTooLarge()
        # The JSON parser lets RecursionError through ("[[[[..." nested too deep): a 400.
        if isinstance(exc, RecursionError):
            exc = ParseError("The JSON body is nested too deeply.")
        return super().handle_exception(exc)


class CanRegisterVersions(BasePermission):
    """Holders of 'Can add deployable version' (deployments.add_deployableversion), superusers."""

    message = (
        "You may not register deployable versions or report CI statuses: this needs the "
        "'Can add deployable version' permission."
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        # SECURITY: isinstance, not None: can_register_versions(None) means the host's operator.
        user = request.user
        return isinstance(user, User) and can_register_versions(user)


def acting_user(request: Request) -> User:
    """The authenticated user of a view whose permission classes require one."""
    user = request.user
    if not isinstance(user, User):  # unreachable behind IsAuthenticated; fail closed
        raise NotAuthenticated()
    return user
