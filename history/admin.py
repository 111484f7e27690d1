from django.contrib import admin
from django.http import HttpRequest

from history.models import AuditEvent


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
