"""Deployments through the API: request one, read them, cancel one.

POST /api/v1/deployments/                 request a deployment (deployments.services.deploy), or
                                          {targets: [...], git_commit_sha}: several, all or nothing
GET  /api/v1/deployments/                 newest first, ?service=&environment=&status=, cursor pages
GET  /api/v1/deployments/<id>/            one deployment
POST /api/v1/deployments/<id>/cancel/     cancel it (rolls back a started one)

Every signed-in user (or token holder) may read deployments, as on the pages; requesting and
cancelling are decided by the deploy service (the deploy and cancel verbs, then the blockers).
"""

import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from deployments.api.common import ApolloAPIView, acting_user
from deployments.engine.heartbeat import pending_reason, waited_long, worker_absence
from deployments.models import (
    DeployableVersion,
    Deployment,
    DeploymentQuerySet,
    Group,
    InvalidTransition,
    Service,
)
from deployments.selectors import visible_deployments
from deployments.services.deploy import (
    MAX_TARGETS,
    DeployOutcome,
    Target,
    cancel_deployment,
    request_deployment,
    request_deployments,
)
from deployments.services.versions import VersionError, normalise_sha
from deployments.status import Status
from environments.models import Environment


class DeploymentOutput(serializers.ModelSerializer[Deployment]):
    service = serializers.CharField(source="service.name")
    environment = serializers.CharField(source="environment.name")
    group = serializers.CharField(source="group.name", allow_null=True, default=None)
    git_commit_sha = serializers.CharField(source="version.git_commit_sha")
    deployed_by = serializers.CharField(source="deployed_by.username")
    url = serializers.SerializerMethodField(help_text="The deployment's page.")
    cause: "serializers.PrimaryKeyRelatedField[Deployment]" = serializers.PrimaryKeyRelatedField(
        read_only=True,
        help_text="The deployment this one reverts (a revert by hand or automatic), else null.",
    )

    class Meta:
        model = Deployment
        fields = [
            "id",
            "status",
            "status_reason",
            "service",
            "environment",
            "group",
            "git_commit_sha",
            "message",
            "deployed_by",
            "created_at",
            "started_at",
            "finished_at",
            "cause",
            "url",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Deployment) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        # A PENDING one that waited long with no worker alive says so, and how to start one
        # (one query per answer, and only when such a deployment is in it).
        if waited_long(instance):
            if "worker_absence" not in self.context:
                self.context["worker_absence"] = worker_absence()
            data["status_reason"] = pending_reason(instance, self.context["worker_absence"])
        return data

    def get_url(self, deployment: Deployment) -> str:
        path = reverse("deployment-detail", args=[deployment.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class BlockerOutput(serializers.Serializer[Any]):
    name = serializers.CharField()
    kind = serializers.CharField()
    reason = serializers.CharField()


class RefusalOutput(serializers.Serializer[Any]):
    detail = serializers.CharField()
    blockers = BlockerOutput(many=True, required=False)
    may_override = serializers.BooleanField(
        required=False, help_text="Send override_reason to deploy past the blockers."
    )


class DeploymentPage(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = DeploymentOutput(many=True)


class NewestFirst(CursorPagination):
    # Keyset pages on the deployment_recent_idx index: stable while deployments are added,
    # and no COUNT(*) over the whole history.
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _detail(message: str, code: int, **extra: Any) -> Response:
    return Response({"detail": message, **extra}, status=code)


def _outcome_response(request: Request, outcome: DeployOutcome) -> Response:
    if outcome.kind == "created" and outcome.deployment is not None:
        body = DeploymentOutput(outcome.deployment, context={"request": request}).data
        location = reverse("api:deployment", args=[outcome.deployment.pk])
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})
    if outcome.kind == "refused":
        return _detail(outcome.reason, status.HTTP_403_FORBIDDEN)
    if outcome.kind == "blocked":
        return _detail(
            f"The deployment is blocked: {outcome.reason}",
            status.HTTP_409_CONFLICT,
            blockers=[
                {"name": r.name, "kind": r.kind, "reason": r.reason} for r in outcome.refusals
            ],
            may_override=outcome.may_override,
        )
    if outcome.kind == "in_progress":
        return _detail(outcome.reason, status.HTTP_409_CONFLICT)
    return _detail(outcome.reason or "The deployment cannot be requested.", 400)


class TargetInput(serializers.Serializer[dict[str, Any]]):
    service = serializers.CharField(max_length=100)
    environment = serializers.CharField(max_length=100)
    group = serializers.CharField(max_length=100, required=False, allow_blank=True)


class SeveralInput(serializers.Serializer[dict[str, Any]]):
    """The list form: one sha to several (service, environment, group) targets."""

    targets = TargetInput(many=True, allow_empty=False)
    git_commit_sha = serializers.CharField(max_length=100, help_text="The full 40-hex sha.")
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    override_reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=2000
    )

    def validate_targets(self, targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(targets) > MAX_TARGETS:
            raise serializers.ValidationError(
                f"That is {len(targets)} deployments at once; at most {MAX_TARGETS}."
            )
        return targets


class TargetOutcome(serializers.Serializer[Any]):
    service = serializers.CharField()
    environment = serializers.CharField()
    group = serializers.CharField(allow_null=True)
    result = serializers.ChoiceField(
        choices=["created", "refused", "blocked", "in_progress", "invalid", "held"],
        help_text="held: allowed, but not created because another target was refused.",
    )
    detail = serializers.CharField(allow_blank=True)
    deployment = DeploymentOutput(allow_null=True)
    blockers = BlockerOutput(many=True)


class SeveralOutput(serializers.Serializer[Any]):
    detail = serializers.CharField()
    batch = serializers.UUIDField(allow_null=True)
    results = TargetOutcome(many=True)


# The status of a list request nothing of which was created: the first refusal kind that applies.
SEVERAL_STATUS = {"refused": 403, "invalid": 400, "blocked": 409, "in_progress": 409}


def _request_several(request: Request, user: Any) -> Response:
    serializer = SeveralInput(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    targets = [
        _target({**target, "git_commit_sha": data["git_commit_sha"]}, index)
        for index, target in enumerate(data["targets"])
    ]
    batch = uuid.uuid4()
    outcomes = request_deployments(
        user=user,
        targets=targets,
        message=data["message"],
        override_reason=data["override_reason"],
        batch=batch,
    )
    results = [_target_outcome(request, outcome) for outcome in outcomes]
    refused = [o for o in outcomes if o.kind != "created"]
    if not refused:
        body = {"detail": f"{len(outcomes)} deployment(s) requested", "batch": str(batch)}
        return Response({**body, "results": results}, status=status.HTTP_201_CREATED)
    code = next(SEVERAL_STATUS[k] for k in SEVERAL_STATUS if any(o.kind == k for o in refused))
    detail = (
        f"Nothing was requested: {len(refused) - sum(o.kind == 'held' for o in refused)} "
        f"of {len(outcomes)} targets were refused"
    )
    return Response({"detail": detail, "batch": None, "results": results}, status=code)


def _target(data: dict[str, Any], index: int) -> Target:
    try:
        service, environment, version, group = _resolve(data)
    except ValidationError as exc:
        raise ValidationError({"targets": {str(index): exc.detail}}) from None
    return Target(service, environment, group, version)


def _target_outcome(request: Request, outcome: DeployOutcome) -> dict[str, Any]:
    deployment = outcome.deployment
    return {
        "service": outcome.service.name,
        "environment": outcome.environment.name,
        "group": outcome.group.name if outcome.group else None,
        "result": outcome.kind,
        "detail": outcome.reason,
        "deployment": DeploymentOutput(deployment, context={"request": request}).data
        if deployment is not None
        else None,
        "blockers": [
            {"name": r.name, "kind": r.kind, "reason": r.reason} for r in outcome.refusals
        ],
    }


class DeploymentsView(ApolloAPIView):
    class Input(serializers.Serializer[dict[str, Any]]):
        service = serializers.CharField(max_length=100)
        environment = serializers.CharField(max_length=100)
        git_commit_sha = serializers.CharField(max_length=100, help_text="The full 40-hex sha.")
        group = serializers.CharField(max_length=100, required=False, allow_blank=True)
        # The Deploy page's limits (deployments.forms.DeployForm).
        message = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=5000
        )
        override_reason = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=2000
        )

        class Meta:
            ref_name = "DeploymentInput"

    class Filters(serializers.Serializer[dict[str, Any]]):
        service = serializers.CharField(required=False, help_text="service name")
        environment = serializers.CharField(required=False, help_text="environment name")
        status = serializers.ChoiceField(choices=Status.choices, required=False)

        class Meta:
            ref_name = "DeploymentFilters"

    @extend_schema(
        operation_id="list_deployments",
        summary="Deployments, newest first (cursor pages of 50, ?page_size= up to 200).",
        parameters=[
            Filters,
            OpenApiParameter("cursor", str, description="From the next/previous link."),
            OpenApiParameter("page_size", int, description="50 by default, at most 200."),
        ],
        responses={200: DeploymentPage, 400: OpenApiResponse(description="A bad filter.")},
    )
    def get(self, request: Request) -> Response:
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        # SECURITY: only what the token's user may view (jenkins: nothing).
        deployments = _filtered(visible_deployments(request.user), filters.validated_data)
        paginator = NewestFirst()
        page = paginator.paginate_queryset(deployments, request, view=self)
        body = DeploymentOutput(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(body)

    @extend_schema(
        operation_id="request_deployment",
        summary="Deploy a registered version of a service to an environment (optionally a "
        "group), or one sha to several targets at once: all or nothing.",
        request=PolymorphicProxySerializer(
            component_name="DeploymentRequest",
            serializers=[Input, SeveralInput],
            resource_type_field_name=None,
        ),
        responses={
            201: PolymorphicProxySerializer(
                component_name="DeploymentCreated",
                serializers=[DeploymentOutput, SeveralOutput],
                resource_type_field_name=None,
            ),
            400: OpenApiResponse(description="Field errors, or {detail} when it cannot run."),
            401: OpenApiResponse(description="No token, or an unknown token."),
            403: OpenApiResponse(RefusalOutput, description="No permission to deploy there."),
            409: OpenApiResponse(RefusalOutput, description="Blocked, or already in progress."),
            413: OpenApiResponse(description="The body is larger than 64 KiB."),
        },
    )
    def post(self, request: Request) -> Response:
        user = acting_user(request)
        if isinstance(request.data, dict) and "targets" in request.data:
            return _request_several(request, user)
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        service, environment, version, group = _resolve(data)
        outcome = request_deployment(
            user=user,
            service=service,
            environment=environment,
            version=version,
            group=group,
            message=data["message"],
            override_reason=data["override_reason"],
        )
        return _outcome_response(request, outcome)


class DeploymentDetailView(ApolloAPIView):
    @extend_schema(
        operation_id="get_deployment",
        responses={200: DeploymentOutput, 404: OpenApiResponse(description="No such deployment.")},
    )
    def get(self, request: Request, deployment_id: int) -> Response:
        deployment = _deployment_or_404(request, deployment_id)
        return Response(DeploymentOutput(deployment, context={"request": request}).data)


class CancelDeploymentView(ApolloAPIView):
    @extend_schema(
        operation_id="cancel_deployment",
        summary="Cancel: a pending deployment ends CANCELED, a started one is rolled back.",
        request=None,
        responses={
            200: DeploymentOutput,
            403: OpenApiResponse(RefusalOutput, description="No permission to cancel it."),
            404: OpenApiResponse(description="No such deployment."),
            409: OpenApiResponse(RefusalOutput, description="It cannot be cancelled (any more)."),
        },
    )
    def post(self, request: Request, deployment_id: int) -> Response:
        user = acting_user(request)
        deployment = _deployment_or_404(request, deployment_id)
        try:
            cancel_deployment(user=user, deployment=deployment)
        except PermissionDenied as exc:
            return _detail(str(exc) or "You may not cancel this deployment.", 403)
        except InvalidTransition as exc:
            return _detail(f"The deployment cannot be cancelled: {exc}", 409)
        deployment = _deployment_or_404(request, deployment_id)
        return Response(DeploymentOutput(deployment, context={"request": request}).data)


def _filtered(deployments: DeploymentQuerySet, filters: dict[str, Any]) -> DeploymentQuerySet:
    if "service" in filters:
        deployments = deployments.filter(service__name=filters["service"])
    if "environment" in filters:
        deployments = deployments.filter(environment__name=filters["environment"])
    if "status" in filters:
        deployments = deployments.filter(status=filters["status"])
    return deployments


def _deployment_or_404(request: Request, deployment_id: int) -> Deployment:
    # SECURITY: a deployment the caller may not view answers as if it did not exist.
    deployment = visible_deployments(request.user).filter(pk=deployment_id).first()
    if deployment is None:
        raise NotFound(f"No deployment #{deployment_id}.")
    return deployment


def _resolve(
    data: dict[str, Any],
) -> tuple[Service, Environment, DeployableVersion, Group | None]:
    """The rows the names in the request refer to; a 400 naming the field otherwise.

    The version is read with its service in one query (the request path's budget); only when
    there is none is the service looked up alone, to say which of the two is unknown."""
    bad_sha: ValidationError | None = None
    try:
        sha = normalise_sha(data["git_commit_sha"])
    except VersionError as exc:
        sha, bad_sha = "", ValidationError({exc.field: [exc.message]})
    # Unordered, first rows: (service, sha) and an environment's name are unique, so the
    # models' orderings (first() sorts by them) would only cost compiling and sorting.
    versions = DeployableVersion.objects.select_related("service").order_by()
    version = (
        next(iter(versions.filter(service__name=data["service"], git_commit_sha=sha)[:1]), None)
        if bad_sha is None
        else None
    )
    service = version.service if version is not None else _service(data["service"])
    environments = Environment.objects.filter(name=data["environment"]).order_by()[:1]
    environment = next(iter(environments), None)
    if environment is None:
        raise ValidationError({"environment": [f"Unknown environment '{data['environment']}'."]})
    if bad_sha is not None:
        raise bad_sha
    if version is None:
        message = f"No deployable version {service.name}@{sha} is registered."
        raise ValidationError({"git_commit_sha": [message]})
    return service, environment, version, _group(data.get("group") or "", service, environment)


def _service(name: str) -> Service:
    service = Service.objects.filter(name=name).first()
    if service is None:
        raise ValidationError({"service": [f"Unknown service '{name}'."]})
    return service


def _group(name: str, service: Service, environment: Environment) -> Group | None:
    if not name:
        return None
    group = Group.objects.filter(service=service, environment=environment, name=name).first()
    if group is None:
        message = f"{service.name} has no group '{name}' in {environment.name}."
        raise ValidationError({"group": [message]})
    return group
