from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save


class PermissionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "permissions"

    def ready(self) -> None:
        from permissions.selectors import forget_shared_reads

        # SECURITY: the request's shared permission reads never outlive a write (any model:
        # grants, their object permissions, group members, services, environments).
        for signal in (post_save, post_delete, m2m_changed):
            signal.connect(forget_shared_reads, dispatch_uid=f"forget_shared_reads:{signal}")
