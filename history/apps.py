from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _text_search_schema(using: str, **kwargs: Any) -> None:
    from history.text_search import ensure_schema

    ensure_schema(connections[using])


class HistoryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "history"

    def ready(self) -> None:
        # The History page's full-text search (history.text_search): made, or repaired, after
        # every migrate (a migration that rebuilds a table on SQLite drops its triggers).
        post_migrate.connect(_text_search_schema, sender=self, dispatch_uid="history-text-search")
