from django.contrib import admin
from django.http import HttpRequest

from history.models import AuditEvent, DeploymentOutcome


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """History is append-only: viewable, never edited or deleted from the admin."""

    list_display = ["created_at", "actor_name", "action", "summary"]
    list_filter = ["action"]
    search_fields = ["actor_name", "summary", "target_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(DeploymentOutcome)
class DeploymentOutcomeAdmin(admin.ModelAdmin[DeploymentOutcome]):
    """Derived by the delivery metrics (history.metrics.outcomes): read-only, for checking a
    figure by hand."""

    list_display = ["deployment", "outcome", "finished_ms", "lead_seconds", "reverted"]
    list_filter = ["outcome", "final", "reverted"]
    search_fields = ["outcome"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
