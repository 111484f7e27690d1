from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating Apollo: health probes, Prometheus metrics, request ids and JSON logs."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "apollo_site.ops"
    label = "ops"
