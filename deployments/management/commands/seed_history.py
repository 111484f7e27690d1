from typing import Any

from django.core.management.base import BaseCommand

from deployments.demo_history import seed_history


class Command(BaseCommand):
    help = "Add four weeks of deployment history to the demo (once), for the Metrics page."

    def handle(self, *args: Any, **options: Any) -> None:
        created = seed_history()
        self.stdout.write(f"demo history: {created} deployments added")
