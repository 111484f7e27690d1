"""`manage.py register_version`: what the API's POST /api/v1/deployable-versions/ does, for a
Jenkins that runs beside Apollo.

Without --user the actor is the system (history says "system"): whoever can run manage.py on the
host already holds the database credentials. With --user NAME the registration is recorded as that
user and needs their 'Can add deployable version' permission, as through the API.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from deployments.models import CIStatus
from deployments.services.versions import VersionError, register_version, report_ci_status


class Command(BaseCommand):
    help = "Register a commit CI built as a deployable version (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--service", required=True, help="service name")
        parser.add_argument("--sha", required=True, help="full 40-hex git commit sha")
        parser.add_argument("--branch", default="")
        parser.add_argument("--message", default="", help="commit message")
        parser.add_argument("--author", default="", help="commit author")
        parser.add_argument("--url", default="", help="commit URL")
        parser.add_argument("--repository-url", default="")
        parser.add_argument("--committed-at", default="", help="ISO 8601; UTC when no offset")
        parser.add_argument("--user", default="", help="act as this user (default: system)")
        parser.add_argument("--ci-state", choices=CIStatus.State.values, default="")
        parser.add_argument("--ci-context", default="", help="with --ci-state (default: ci)")
        parser.add_argument("--ci-url", default="", help="with --ci-state: link to the build")

    def handle(self, *args: Any, **options: Any) -> None:
        if (options["ci_context"] or options["ci_url"]) and not options["ci_state"]:
            raise CommandError("--ci-context and --ci-url need --ci-state.")
        actor = self._actor(options["user"])
        try:
            version, created = register_version(
                actor=actor,
                service_name=options["service"],
                git_commit_sha=options["sha"],
                branch=options["branch"],
                commit_message=options["message"],
                commit_author=options["author"],
                commit_url=options["url"],
                repository_url=options["repository_url"],
                committed_at=self._committed_at(options["committed_at"]),
            )
            prefix = "registered" if created else "already registered"
            self.stdout.write(f"{prefix} {version.service.name}@{version.git_commit_sha[:12]}")
            if options["ci_state"]:
                status, _ = report_ci_status(
                    actor=actor,
                    service_name=version.service.name,
                    git_commit_sha=version.git_commit_sha,
                    context=options["ci_context"] or "ci",
                    state=options["ci_state"],
                    url=options["ci_url"],
                )
                self.stdout.write(f"CI status {status.context}: {status.state}")
        except VersionError as exc:
            raise CommandError(f"{_OPTION.get(exc.field, exc.field)}: {exc.message}") from None
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None

    def _actor(self, username: str) -> User | None:
        if not username:
            return None
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"--user: unknown user '{username}'.") from None

    def _committed_at(self, value: str) -> datetime | None:
        if not value:
            return None
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise CommandError(f"--committed-at: '{value}' is not an ISO 8601 date and time.")
        # Like the API (DRF's DateTimeField): a time without an offset is in TIME_ZONE (UTC).
        return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


# Service field names as the command's options, so an error names what the user typed.
_OPTION = {
    "service": "--service",
    "git_commit_sha": "--sha",
    "branch": "--branch",
    "commit_message": "--message",
    "commit_author": "--author",
    "commit_url": "--url",
    "repository_url": "--repository-url",
    "committed_at": "--committed-at",
    "context": "--ci-context",
    "state": "--ci-state",
    "url": "--ci-url",
}
