from django.apps import AppConfig
from django.db.backends.signals import connection_created


class OpsConfig(AppConfig):
    """Operating Apollo: health probes, Prometheus metrics, request ids and JSON logs."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "apollo_site.ops"
    label = "ops"

    def ready(self) -> None:
        from apollo_site.pg_timestamps import read_timestamps_in_c

        # Every process's PostgreSQL connections read timestamps at C speed (when in UTC).
        connection_created.connect(read_timestamps_in_c, dispatch_uid="apollo-c-timestamps")
