"""Deployable versions from CI: register a version, report a CI status on it.

POST /api/v1/deployable-versions/                              register (201 new, 200 known)
POST /api/v1/deployable-versions/<service>/<sha>/ci-status/    report a CI status (201/200)
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from deployments.api.common import ApolloAPIView, CanRegisterVersions, acting_user
from deployments.models import CIStatus, DeployableVersion
from deployments.services.versions import (
    VersionError,
    VersionNotFound,
    register_version,
    report_ci_status,
)

_ERRORS = {
    400: OpenApiResponse(description="Field errors: {field: [message, ...]}."),
    401: OpenApiResponse(description="No token, or an unknown token."),
    403: OpenApiResponse(description="The user may not register versions."),
    413: OpenApiResponse(description="The body is larger than 64 KiB."),
    415: OpenApiResponse(description="The body is not application/json."),
}


class DeployableVersionOutput(serializers.ModelSerializer[DeployableVersion]):
    service = serializers.CharField(source="service.name")

    class Meta:
        model = DeployableVersion
        fields = [
            "id",
            "service",
            "git_commit_sha",
            "branch",
            "commit_message",
            "commit_author",
            "commit_url",
            "repository_url",
            "committed_at",
            "created_at",
            "image",
        ]
        read_only_fields = fields


class CIStatusOutput(serializers.ModelSerializer[CIStatus]):
    service = serializers.CharField(source="version.service.name")
    git_commit_sha = serializers.CharField(source="version.git_commit_sha")

    class Meta:
        model = CIStatus
        fields = [
            "service",
            "git_commit_sha",
            "context",
            "state",
            "url",
            "description",
            "reported_at",
        ]
        read_only_fields = fields


def _field_errors(exc: VersionError) -> ValidationError:
    return ValidationError({exc.field: [exc.message]})


class RegisterVersionView(ApolloAPIView):
    permission_classes = [IsAuthenticated, CanRegisterVersions]

    class Input(serializers.Serializer[dict[str, Any]]):
        # Types only; the service validates lengths, the sha and URLs, so the command gets
        # the same rules.
        service = serializers.CharField(max_length=100)
        git_commit_sha = serializers.CharField(max_length=100)
        branch = serializers.CharField(required=False, allow_blank=True, default="")
        commit_message = serializers.CharField(required=False, allow_blank=True, default="")
        commit_author = serializers.CharField(required=False, allow_blank=True, default="")
        commit_url = serializers.CharField(required=False, allow_blank=True, default="")
        repository_url = serializers.CharField(required=False, allow_blank=True, default="")
        committed_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

        class Meta:
            ref_name = "RegisterVersionInput"  # the schema's component name

    @extend_schema(
        operation_id="register_deployable_version",
        summary="Register a commit CI built as a deployable version (idempotent).",
        request=Input,
        responses={
            201: OpenApiResponse(DeployableVersionOutput, description="Registered now."),
            200: OpenApiResponse(DeployableVersionOutput, description="Already registered."),
            **_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        data = self._validated(request)
        try:
            version, created = register_version(
                actor=acting_user(request),
                service_name=data.pop("service"),
                **data,
            )
        except VersionError as exc:
            raise _field_errors(exc) from None
        return Response(
            DeployableVersionOutput(version).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    def _validated(self, request: Request) -> dict[str, Any]:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class ReportCIStatusView(ApolloAPIView):
    permission_classes = [IsAuthenticated, CanRegisterVersions]

    class Input(serializers.Serializer[dict[str, Any]]):
        # The metaclass pops declared fields, so this does not shadow Serializer.context.
        context = serializers.CharField(  # type: ignore[assignment]
            required=False, allow_blank=True, default="ci"
        )
        state = serializers.ChoiceField(choices=CIStatus.State.choices)
        url = serializers.CharField(required=False, allow_blank=True, default="")
        description = serializers.CharField(required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "CIStatusInput"

    @extend_schema(
        operation_id="report_ci_status",
        summary="Create or replace the CI status of one context on a registered version.",
        request=Input,
        responses={
            201: OpenApiResponse(CIStatusOutput, description="First status of this context."),
            200: OpenApiResponse(CIStatusOutput, description="The context's status replaced."),
            404: OpenApiResponse(description="No such service, or the version is not registered."),
            **_ERRORS,
        },
    )
    def post(self, request: Request, service: str, sha: str) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            ci_status, created = report_ci_status(
                actor=acting_user(request),
                service_name=service,
                git_commit_sha=sha,
                **serializer.validated_data,
            )
        except VersionNotFound as exc:
            raise NotFound(str(exc)) from None
        except VersionError as exc:
            if exc.field in ("service", "git_commit_sha"):  # parts of the URL, not the body
                raise NotFound(exc.message) from None
            raise _field_errors(exc) from None
        return Response(
            CIStatusOutput(ci_status).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
