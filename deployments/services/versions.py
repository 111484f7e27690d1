"""Deployable versions registered by CI, and the CI statuses reported on them.

Called by the API (`deployments.api.versions`) and by `manage.py register_version`; both turn a
`VersionError` into their own error shape (a 400 with field errors, a CommandError).

Repeat registrations: registering a (service, sha) that already exists returns the existing row
with created=False. Metadata sent with the repeat only fills fields that are still empty (say a
first call from the command with just the sha, then Jenkins with the commit message); a field that
already has a value is never overwritten, so a replayed or misconfigured job cannot rewrite what a
version says about itself. Filled fields are recorded in history as `version.updated`.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments.models import CIStatus, DeployableVersion, Service
from history.services import record_event

REGISTER_PERMISSION = "deployments.add_deployableversion"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# The optional text metadata, in the order the API documents them.
METADATA_FIELDS = ("branch", "commit_message", "commit_author", "commit_url", "repository_url")


class VersionError(Exception):
    """Bad input for one field; `field` is the API/command name of that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class VersionNotFound(Exception):
    """No deployable version with that service and sha is registered."""


@dataclass(frozen=True)
class _Metadata:
    values: dict[str, Any]

    def missing_on(self, version: DeployableVersion) -> dict[str, Any]:
        """The given values whose field is still empty on version."""
        return {
            name: value
            for name, value in self.values.items()
            if value not in ("", None) and getattr(version, name) in ("", None)
        }


def can_register_versions(user: User | None) -> bool:
    """The right to register versions and report CI statuses (None: the host's operator)."""
    return user is None or (user.is_active and user.has_perm(REGISTER_PERMISSION))


def normalise_sha(value: str) -> str:
    sha = value.strip().lower()
    if not SHA_RE.fullmatch(sha):
        raise VersionError(
            "git_commit_sha", f"'{value[:60]}' is not a full git commit sha (40 hex digits)."
        )
    return sha


def register_version(
    *,
    actor: User | None,
    service_name: str,
    git_commit_sha: str,
    branch: str = "",
    commit_message: str = "",
    commit_author: str = "",
    commit_url: str = "",
    repository_url: str = "",
    committed_at: datetime | None = None,
) -> tuple[DeployableVersion, bool]:
    """Register (service, sha) as deployable; idempotent. Returns (version, created).

    actor None is the system (the management command run on the host without --user).
    """
    _check_permission(actor)
    sha = normalise_sha(git_commit_sha)
    metadata = _clean_metadata(
        branch=branch,
        commit_message=commit_message,
        commit_author=commit_author,
        commit_url=commit_url,
        repository_url=repository_url,
        committed_at=committed_at,
    )
    service = _service_named(service_name)
    with transaction.atomic():
        version = _existing(service, sha)
        if version is not None:
            _fill_empty_fields(actor, version, metadata)
            return version, False
        try:
            # The savepoint keeps the outer transaction usable when a concurrent registration of
            # the same sha wins the race on the unique (service, sha) constraint.
            with transaction.atomic():
                version = DeployableVersion.objects.create(
                    service=service, git_commit_sha=sha, **metadata.values
                )
        except IntegrityError:
            version = _existing(service, sha)
            if version is None:
                raise
            return version, False
        record_event(
            actor=actor,
            action="version.registered",
            summary=f"registered {version}",
            target=version,
            data={"service": service.name, "git_commit_sha": sha, "branch": version.branch},
        )
    return version, True


def report_ci_status(
    *,
    actor: User | None,
    service_name: str,
    git_commit_sha: str,
    context: str = "ci",
    state: str,
    url: str = "",
    description: str = "",
) -> tuple[CIStatus, bool]:
    """Create or replace the CI status of one context on a registered version."""
    _check_permission(actor)
    sha = normalise_sha(git_commit_sha)
    values = _clean_ci_status(context=context, state=state, url=url, description=description)
    service = _service_named(service_name)
    with transaction.atomic():
        version = _existing(service, sha)
        if version is None:
            raise VersionNotFound(
                f"No deployable version {service.name}@{sha} is registered; register it first."
            )
        status, created = _upsert_ci_status(version, values)
        record_event(
            actor=actor,
            action="version.ci_status",
            summary=f"{version} {status.context}: {status.state}",
            target=version,
            data={"context": status.context, "state": status.state, "url": status.url},
        )
    return status, created


def _check_permission(actor: User | None) -> None:
    # SECURITY: the API checks this too; the service checks again so that every caller
    # (a page, the command with --user) is held to the same rule.
    if not can_register_versions(actor):
        raise PermissionDenied("You may not register deployable versions.")


def _service_named(name: str) -> Service:
    try:
        return Service.objects.get(name=name)
    except Service.DoesNotExist:
        raise VersionError("service", f"Unknown service '{name[:100]}'.") from None


def _existing(service: Service, sha: str) -> DeployableVersion | None:
    return (
        DeployableVersion.objects.select_related("service")
        .filter(service=service, git_commit_sha=sha)
        .first()
    )


def _clean_field(model: Any, name: str, value: Any) -> Any:
    """Run the model field's own validation (max length, URL syntax) and name the field."""
    field = model._meta.get_field(name)
    try:
        return field.clean(value, None)
    except ValidationError as exc:
        raise VersionError(name, " ".join(exc.messages)) from None


def _clean_metadata(*, committed_at: datetime | None, **texts: str) -> _Metadata:
    values: dict[str, Any] = {
        name: _clean_field(DeployableVersion, name, (texts[name] or "").strip())
        for name in METADATA_FIELDS
    }
    if committed_at is not None and timezone.is_naive(committed_at):
        raise VersionError("committed_at", "A commit time must include a time zone offset.")
    values["committed_at"] = committed_at
    return _Metadata(values)


def _fill_empty_fields(actor: User | None, version: DeployableVersion, metadata: _Metadata) -> None:
    missing = metadata.missing_on(version)
    if not missing:
        return
    # Conditional on the fields still being empty, so two concurrent repeats cannot overwrite
    # each other's value: the first one wins, as for a field filled by the first registration.
    for name, value in list(missing.items()):
        updated = (
            DeployableVersion.objects.filter(pk=version.pk)
            .filter(**{name: None} if name == "committed_at" else {name: ""})
            .update(**{name: value})
        )
        if not updated:
            del missing[name]
    version.refresh_from_db()
    if missing:
        record_event(
            actor=actor,
            action="version.updated",
            summary=f"filled {', '.join(sorted(missing))} of {version}",
            target=version,
            data={"filled": sorted(missing)},
        )


def _clean_ci_status(*, context: str, state: str, url: str, description: str) -> dict[str, str]:
    context = (context or "").strip() or "ci"
    if state not in CIStatus.State.values:
        raise VersionError(
            "state", f"'{state[:30]}' is not one of {', '.join(CIStatus.State.values)}."
        )
    return {
        "context": _clean_field(CIStatus, "context", context),
        "state": state,
        "url": _clean_field(CIStatus, "url", (url or "").strip()),
        "description": _clean_field(CIStatus, "description", (description or "").strip()),
    }


def _upsert_ci_status(version: DeployableVersion, values: dict[str, str]) -> tuple[CIStatus, bool]:
    defaults = {k: v for k, v in values.items() if k != "context"}
    try:
        # A savepoint: two reports of the same context may race on the unique constraint.
        with transaction.atomic():
            return CIStatus.objects.update_or_create(
                version=version, context=values["context"], defaults=defaults
            )
    except IntegrityError:
        return CIStatus.objects.update_or_create(
            version=version, context=values["context"], defaults=defaults
        )
