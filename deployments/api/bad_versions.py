"""Bad versions through the API (rollbacks that stick, deployments.services.bad_versions).

GET  /api/v1/bad-versions/                  the marks in force the caller may view, newest
                                            first; ?service=&environment=, ?unmarked=1 with the
                                            undone ones too
POST /api/v1/bad-versions/                  mark a version bad in an environment (cancel verb)
POST /api/v1/bad-versions/<id>/unmark/      undo a mark (manage verb), with a reason
POST /api/v1/deployments/<id>/revert/       revert a deployment (as the page's roll back),
                                            optionally marking its version bad

Marks of (service, environment) pairs the caller may not view answer as if they did not exist.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from deployments.api.common import ApolloAPIView, acting_user
from deployments.api.deployments import (
    DeploymentOutput,
    RefusalOutput,
    _deployment_or_404,
    _outcome_response,
)
from deployments.models import BadVersion, InvalidTransition, Service
from deployments.services import bad_versions
from deployments.services.deploy import revert_deployment
from deployments.services.versions import VersionError, normalise_sha
from environments.models import Environment
from permissions.selectors import visibility

MAX_LISTED = 500


class BadVersionOutput(serializers.ModelSerializer[BadVersion]):
    service = serializers.CharField(source="service.name")
    environment = serializers.CharField(source="environment.name")
    git_commit_sha = serializers.CharField(source="sha")
    marked_by = serializers.CharField(
        source="marked_by_name", help_text="A user name, or Apollo for a FAILED verdict."
    )
    deployment = serializers.IntegerField(source="deployment_id", allow_null=True)
    unmarked_by = serializers.CharField(
        source="unmarked_by.username", allow_null=True, default=None
    )
    bad = serializers.SerializerMethodField(help_text="True while the mark is in force.")

    class Meta:
        model = BadVersion
        fields = [
            "id",
            "service",
            "environment",
            "git_commit_sha",
            "reason",
            "marked_by",
            "marked_at",
            "deployment",
            "bad",
            "unmarked_by",
            "unmarked_at",
            "unmark_reason",
        ]
        read_only_fields = fields

    def get_bad(self, mark: BadVersion) -> bool:
        return mark.unmarked_at is None


def _visible(request: Request) -> QuerySet[BadVersion]:
    # SECURITY: only the pairs the caller may view (jenkins: none).
    return BadVersion.objects.filter(visibility(request.user).q()).select_related(
        "service", "environment", "marked_by", "unmarked_by"
    )


def _refused(exc: Exception, fallback: str) -> Response:
    return Response({"detail": str(exc) or fallback}, status=status.HTTP_403_FORBIDDEN)


class BadVersionsView(ApolloAPIView):
    class Filters(serializers.Serializer[dict[str, Any]]):
        service = serializers.CharField(required=False, max_length=100)
        environment = serializers.CharField(required=False, max_length=100)
        unmarked = serializers.BooleanField(
            required=False, default=False, help_text="Include the marks undone."
        )

        class Meta:
            ref_name = "BadVersionFilters"

    class Input(serializers.Serializer[dict[str, Any]]):
        service = serializers.CharField(max_length=100)
        environment = serializers.CharField(max_length=100)
        git_commit_sha = serializers.CharField(max_length=100, help_text="The full 40-hex sha.")
        reason = serializers.CharField(max_length=bad_versions.MAX_REASON)

        class Meta:
            ref_name = "BadVersionInput"

    @extend_schema(
        operation_id="list_bad_versions",
        summary="Versions marked bad, newest first (at most 500).",
        parameters=[Filters],
        responses={200: BadVersionOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        marks = _visible(request)
        if not data["unmarked"]:
            marks = marks.filter(unmarked_at__isnull=True)
        if "service" in data:
            marks = marks.filter(service__name=data["service"])
        if "environment" in data:
            marks = marks.filter(environment__name=data["environment"])
        return Response(BadVersionOutput(marks[:MAX_LISTED], many=True).data)

    @extend_schema(
        operation_id="mark_version_bad",
        summary="Mark a registered version bad in an environment: deploying it there is "
        "refused (409, naming who and why) until it is unmarked.",
        request=Input,
        responses={
            201: BadVersionOutput,
            200: OpenApiResponse(BadVersionOutput, description="It was marked bad already."),
            400: OpenApiResponse(description="Field errors (unknown service, sha, no reason)."),
            403: OpenApiResponse(RefusalOutput, description="No cancel permission there."),
        },
    )
    def post(self, request: Request) -> Response:
        user = acting_user(request)
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        service = Service.objects.filter(name=data["service"]).first()
        if service is None:
            raise ValidationError({"service": [f"Unknown service '{data['service']}'."]})
        environment = Environment.objects.filter(name=data["environment"]).first()
        if environment is None:
            raise ValidationError(
                {"environment": [f"Unknown environment '{data['environment']}'."]}
            )
        try:
            sha = normalise_sha(data["git_commit_sha"])
        except VersionError as exc:
            raise ValidationError({"git_commit_sha": [str(exc)]}) from None
        try:
            marked = bad_versions.mark_bad(
                user=user, service=service, environment=environment, sha=sha, reason=data["reason"]
            )
        except PermissionDenied as exc:
            return _refused(exc, "You may not mark versions bad there.")
        except bad_versions.BadVersionError as exc:
            raise ValidationError({"detail": [str(exc)]}) from None
        code = status.HTTP_201_CREATED if marked.created else status.HTTP_200_OK
        return Response(BadVersionOutput(marked.mark).data, status=code)


class UnmarkBadVersionView(ApolloAPIView):
    class Input(serializers.Serializer[dict[str, Any]]):
        reason = serializers.CharField(max_length=bad_versions.MAX_REASON)

        class Meta:
            ref_name = "UnmarkInput"

    @extend_schema(
        operation_id="unmark_bad_version",
        summary="Undo a mark (manage permission), with a reason; the mark is kept as undone.",
        request=Input,
        responses={
            200: BadVersionOutput,
            400: OpenApiResponse(description="No reason."),
            403: OpenApiResponse(RefusalOutput, description="No manage permission there."),
            404: OpenApiResponse(description="No such mark."),
            409: OpenApiResponse(RefusalOutput, description="It is not marked bad any more."),
        },
    )
    def post(self, request: Request, mark_id: int) -> Response:
        user = acting_user(request)
        mark = _visible(request).filter(pk=mark_id).first()
        if mark is None:
            raise NotFound(f"No bad version #{mark_id}.")
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            mark = bad_versions.unmark(
                user=user, mark=mark, reason=serializer.validated_data["reason"]
            )
        except PermissionDenied as exc:
            return _refused(exc, "You may not unmark versions there.")
        except bad_versions.BadVersionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(BadVersionOutput(mark).data)


class RevertDeploymentView(ApolloAPIView):
    class Input(serializers.Serializer[dict[str, Any]]):
        message = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=5000
        )
        override_reason = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=2000
        )
        mark_bad = serializers.CharField(
            required=False,
            max_length=bad_versions.MAX_REASON,
            help_text="A reason: mark the reverted version bad in the environment.",
        )

        class Meta:
            ref_name = "RevertInput"

    @extend_schema(
        operation_id="revert_deployment",
        summary="Revert: a running deployment is cancelled (rolled back); a finished one is "
        "followed by a deployment of the version that ran before it, through the full gate.",
        request=Input,
        responses={
            200: OpenApiResponse(DeploymentOutput, description="Cancelled (it was running)."),
            201: OpenApiResponse(DeploymentOutput, description="The revert deployment."),
            400: OpenApiResponse(description="Field errors."),
            403: OpenApiResponse(RefusalOutput, description="No permission."),
            404: OpenApiResponse(description="No such deployment."),
            409: OpenApiResponse(RefusalOutput, description="Blocked, or nothing to revert to."),
        },
    )
    def post(self, request: Request, deployment_id: int) -> Response:
        user = acting_user(request)
        deployment = _deployment_or_404(request, deployment_id)
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            outcome = revert_deployment(
                user=user,
                deployment=deployment,
                message=data["message"],
                override_reason=data["override_reason"],
                mark_bad=data.get("mark_bad"),
            )
        except PermissionDenied as exc:
            return _refused(exc, "You may not revert this deployment.")
        except InvalidTransition as exc:
            return Response({"detail": f"Not reverted: {exc}"}, status=status.HTTP_409_CONFLICT)
        except bad_versions.BadVersionError as exc:
            raise ValidationError({"mark_bad": [str(exc)]}) from None
        if outcome is None:
            deployment = _deployment_or_404(request, deployment_id)
            return Response(DeploymentOutput(deployment, context={"request": request}).data)
        return _outcome_response(request, outcome)
