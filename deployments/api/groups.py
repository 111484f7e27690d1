"""Groups through the API: list the groups of a service and/or an environment.

GET /api/v1/groups/?service=&environment=      by name, ordered by service, environment, name

A caller sees the groups of the (service, environment) pairs they may view, as on the service
page. Groups are
few per service (one per shard), so the list is not paginated; MAX_GROUPS bounds it.
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from deployments.api.common import ApolloAPIView
from deployments.models import Group
from permissions.selectors import visibility

MAX_GROUPS = 1000


class GroupOutput(serializers.ModelSerializer[Group]):
    service = serializers.CharField(source="service.name")
    environment = serializers.CharField(source="environment.name")
    running_sha = serializers.CharField(
        allow_null=True, read_only=True, help_text="The sha of the group's last DONE deployment."
    )

    class Meta:
        model = Group
        fields = [
            "id",
            "service",
            "environment",
            "name",
            "scaling_factor",
            "variables",
            "scaling_locked",
            "scaling_lock_reason",
            "running_sha",
        ]
        read_only_fields = fields


class GroupsView(ApolloAPIView):
    class Filters(serializers.Serializer[dict[str, Any]]):
        service = serializers.CharField(required=False, help_text="service name")
        environment = serializers.CharField(required=False, help_text="environment name")

        class Meta:
            ref_name = "GroupFilters"

    @extend_schema(
        operation_id="list_groups",
        summary="Groups of a service and/or environment, with the sha each one runs.",
        parameters=[Filters],
        responses={
            200: GroupOutput(many=True),
            400: OpenApiResponse(description="A bad filter."),
            401: OpenApiResponse(description="No token, or an unknown token."),
        },
    )
    def get(self, request: Request) -> Response:
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        # SECURITY: only the groups of pairs the caller may view (a token of jenkins: none).
        groups = (
            Group.objects.with_status()
            .filter(visibility(request.user).q())
            .order_by("service__name", "environment__name", "name")
        )
        if "service" in filters.validated_data:
            groups = groups.filter(service__name=filters.validated_data["service"])
        if "environment" in filters.validated_data:
            groups = groups.filter(environment__name=filters.validated_data["environment"])
        return Response(GroupOutput(groups[:MAX_GROUPS], many=True).data)
