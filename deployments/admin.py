from django.contrib import admin

from deployments.models import CIStatus, DeployableVersion, Deployment, Group, Service


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin[Service]):
    list_display = ["name", "image_repository", "git_repository_url", "deployed_per_group"]
    list_filter = ["deployed_per_group"]
    search_fields = ["name", "image_repository", "git_repository_url"]


@admin.register(DeployableVersion)
class DeployableVersionAdmin(admin.ModelAdmin[DeployableVersion]):
    list_display = ["service", "short_sha", "branch", "commit_author", "committed_at", "created_at"]
    list_filter = ["service", "branch"]
    search_fields = ["git_commit_sha", "branch", "commit_message", "commit_author"]
    list_select_related = ["service"]
    date_hierarchy = "created_at"

    @admin.display(description="sha", ordering="git_commit_sha")
    def short_sha(self, obj: DeployableVersion) -> str:
        return obj.git_commit_sha[:12]


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin[Group]):
    list_display = ["name", "service", "environment", "scaling_factor"]
    list_filter = ["service", "environment"]
    search_fields = ["name", "service__name", "environment__name"]
    list_select_related = ["service", "environment"]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin[Deployment]):
    """Read-only: deployments change state only through the deployment services."""

    list_display = ["id", "service", "environment", "group", "status", "deployed_by", "created_at"]
    list_filter = ["status", "environment", "service"]
    search_fields = ["message", "version__git_commit_sha", "deployed_by__username"]
    list_select_related = ["service", "environment", "group", "deployed_by"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(CIStatus)
class CIStatusAdmin(admin.ModelAdmin[CIStatus]):
    list_display = ["version", "context", "state", "reported_at"]
    list_filter = ["state", "context"]
    search_fields = ["version__git_commit_sha", "context"]
    list_select_related = ["version__service"]
