"""`manage.py prune_notifications [--days N]`: what the deliverer thread does once an hour
(deployments.notifications.pruning), for a cron job or by hand."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from deployments.notifications.pruning import prune_delivered, retention


class Command(BaseCommand):
    help = "Delete delivered notification rows older than the retention (default: the setting)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="keep delivered rows this many days (at least 1; default: "
            "APOLLO_NOTIFICATION_RETENTION_DAYS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is not None and days < 1:
            self.stderr.write("--days must be at least 1; nothing was deleted.")
            raise SystemExit(2)
        keep = timedelta(days=days) if days is not None else retention()
        deleted = prune_delivered(keep=keep)
        self.stdout.write(f"{deleted} delivered notifications older than {keep.days} days deleted")
