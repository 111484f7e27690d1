import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Create (or refresh) the demo admin; prints its name and a freshly generated password."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        # SECURITY: a new random password on every run; it is printed once and never stored
        # in plain text anywhere.
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            admin, _ = user_model.objects.get_or_create(
                username="alice", defaults={"email": "alice@example.com"}
            )
            admin.is_staff = True
            admin.is_superuser = True
            admin.set_password(password)
            admin.save()
        self.stdout.write(f"Demo admin: username 'alice', password '{password}'")
