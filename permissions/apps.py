from django.apps import AppConfig


class PermissionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "permissions"

    def ready(self) -> None:
        from permissions import signals  # noqa: F401  (registers the history receivers)
