"""The REST API under /api/v1/ (the public contract; see README "Jenkins")."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated

from deployments.api import bad_versions, deployments, groups, versions
from history.metrics.api import MetricsView

app_name = "api"

urlpatterns = [
    path(
        "deployable-versions/",
        versions.RegisterVersionView.as_view(),
        name="deployable-versions",
    ),
    path(
        "deployable-versions/<str:service>/<str:sha>/ci-status/",
        versions.ReportCIStatusView.as_view(),
        name="ci-status",
    ),
    path("deployments/", deployments.DeploymentsView.as_view(), name="deployments"),
    path("groups/", groups.GroupsView.as_view(), name="groups"),
    path(
        "deployments/<int:deployment_id>/",
        deployments.DeploymentDetailView.as_view(),
        name="deployment",
    ),
    path(
        "deployments/<int:deployment_id>/cancel/",
        deployments.CancelDeploymentView.as_view(),
        name="deployment-cancel",
    ),
    path(
        "deployments/<int:deployment_id>/revert/",
        bad_versions.RevertDeploymentView.as_view(),
        name="deployment-revert",
    ),
    path("bad-versions/", bad_versions.BadVersionsView.as_view(), name="bad-versions"),
    path(
        "bad-versions/<int:mark_id>/unmark/",
        bad_versions.UnmarkBadVersionView.as_view(),
        name="bad-version-unmark",
    ),
    path("metrics/", MetricsView.as_view(), name="metrics"),
    # SECURITY: the schema lists every operation; signed-in users (or token holders) only.
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]),
        name="schema",
    ),
]
