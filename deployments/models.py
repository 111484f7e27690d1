import json
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from deployments.status import Status
from environments.models import Environment, dns_label

sha_validator = RegexValidator(r"^[0-9a-f]{40}$", "A git commit sha is 40 lower-case hex digits.")


def _validate_string_list(value: object, *, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError(f'{what} must be a JSON list of non-empty strings, e.g. ["x"].')
    return value


def validate_name_list(value: object) -> None:
    """A JSON list of Kubernetes object names (DNS-1123 subdomains)."""
    names = _validate_string_list(value, what="Names")
    bad = sorted(n for n in names if not re.fullmatch(_DNS_SUBDOMAIN, n))
    if bad:
        raise ValidationError(f"Not Kubernetes object names: {', '.join(bad)}.")


def validate_image_list(value: object) -> None:
    """A JSON list of exact image references, each with a tag or a digest."""
    images = _validate_string_list(value, what="Images")
    bad = sorted(i for i in images if not re.fullmatch(_PINNED_IMAGE, i))
    if bad:
        raise ValidationError(
            f"Images need a tag or digest and no spaces (repository:tag): {', '.join(bad)}."
        )


_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_PINNED_IMAGE = r"[^\s@]+(:[^\s/:@]+|@sha256:[0-9a-f]{64})"


class Service(models.Model):
    """A deployable component and its mustache manifest templates."""

    name = models.CharField(max_length=63, unique=True, validators=[dns_label])
    image_repository = models.CharField(
        max_length=300, help_text="The image is <image repository>:<full commit sha>."
    )
    git_repository_url = models.URLField(blank=True)
    deployment_template = models.TextField(help_text="Mustache YAML of the Deployment.")
    service_template = models.TextField(blank=True, help_text="Mustache YAML of the Service.")
    ingress_template = models.TextField(blank=True, help_text="Mustache YAML of the Ingress.")
    extra_templates = models.TextField(
        blank=True, help_text="Further manifests as mustache YAML documents separated by ---."
    )
    default_variables: models.JSONField[dict[str, Any], dict[str, Any]] = models.JSONField(
        default=dict, blank=True
    )
    deployed_per_group = models.BooleanField(
        default=False, help_text="This service can only be deployed with groups."
    )
    # The manifest policy's allow-lists (deployments.policy), set by an admin.
    allowed_sidecar_images: models.JSONField[list[str], list[str]] = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_image_list],
        help_text="Images besides <image repository>:<sha> the manifests may run, with their "
        'tag or digest, e.g. ["registry.example.com/tools/proxy:1.4"].',
    )
    allowed_service_accounts: models.JSONField[list[str], list[str]] = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_name_list],
        help_text='Service accounts the pods may run as (serviceAccountName), e.g. ["checkout"].',
    )
    allowed_secrets: models.JSONField[list[str], list[str]] = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_name_list],
        help_text="Secrets the manifests may reference (volumes, envFrom, secretKeyRef, "
        'imagePullSecrets), e.g. ["checkout-db"].',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeployableVersion(models.Model):
    """A commit of a service that CI built and registered as deployable."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="versions")
    git_commit_sha = models.CharField(max_length=40, validators=[sha_validator])
    branch = models.CharField(max_length=255, blank=True, db_index=True)
    commit_message = models.TextField(blank=True)
    commit_author = models.CharField(max_length=255, blank=True)
    commit_url = models.URLField(max_length=500, blank=True)
    repository_url = models.URLField(max_length=500, blank=True)
    committed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "git_commit_sha"], name="version_unique_sha"
            ),
            models.CheckConstraint(
                condition=Q(git_commit_sha__regex=r"^[0-9a-f]{40}$"), name="version_sha_40_hex"
            ),
        ]
        indexes = [
            # Serves "recent versions of a service" on the deploy page.
            models.Index(fields=["service", "-created_at"], name="version_recent_idx")
        ]

    def __str__(self) -> str:
        return f"{self.service.name}@{self.git_commit_sha[:12]}"

    @property
    def image(self) -> str:
        return f"{self.service.image_repository}:{self.git_commit_sha}"


MAX_SCALING_FACTOR = 50
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def validate_group_variables(value: object) -> None:
    """Group variables are a JSON object of string values with mustache-friendly names."""
    if not isinstance(value, dict):
        raise ValidationError('Group variables must be a JSON object, e.g. {"region": "eu"}.')
    bad_names = sorted(k for k in value if not re.match(VARIABLE_NAME, str(k)))
    if bad_names:
        raise ValidationError(
            f"Variable names are letters, digits and _ (not starting with a digit): "
            f"{', '.join(bad_names)}."
        )
    not_strings = sorted(k for k, v in value.items() if not isinstance(v, str))
    if not_strings:
        raise ValidationError(
            f"Group variable values must be strings; not a string: {', '.join(not_strings)}."
        )


class GroupQuerySet(models.QuerySet["Group"]):
    def with_status(self) -> "GroupQuerySet":
        """Annotated with what runs: the sha and id of the group's last DONE deployment, and the
        id of its deployment in progress (subqueries: one query for any number of groups)."""
        done = Deployment.objects.filter(group=OuterRef("pk")).last_done()
        active = Deployment.objects.in_progress().filter(group=OuterRef("pk"))
        return self.select_related("service", "environment").annotate(
            running_sha=Subquery(done.values("version__git_commit_sha")[:1]),
            running_deployment_id=Subquery(done.values("pk")[:1]),
            active_deployment_id=Subquery(active.values("pk")[:1]),
        )


class Group(models.Model):
    """A shard of a service in an environment with its own variables and scaling factor."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="groups")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=40, validators=[dns_label])
    scaling_factor = models.PositiveIntegerField(
        default=1,
        validators=[MaxValueValidator(MAX_SCALING_FACTOR)],
        help_text="Replicas of this group's Deployment.",
    )
    variables: models.JSONField[dict[str, Any], dict[str, Any]] = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_group_variables],
        help_text="A JSON object of strings; they override the environment's variables.",
    )
    scaling_locked = models.BooleanField(
        default=False, help_text="While locked, nobody can scale this group."
    )
    scaling_lock_reason = models.CharField(max_length=300, blank=True)

    objects = GroupQuerySet.as_manager()

    class Meta:
        ordering = ["service__name", "environment__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment", "name"], name="group_unique_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.service.name}/{self.environment.name}/{self.name}"

    @property
    def variables_json(self) -> str:
        """The variables as the JSON the edit forms show."""
        return json.dumps(self.variables, sort_keys=True)


class InvalidTransition(Exception):
    """A status change the deployment state machine does not allow."""


# "The last DONE deployment" of a target: the newest by finish time (then id).
LAST_DONE_ORDER = ("-finished_at", "-id")


class DeploymentQuerySet(models.QuerySet["Deployment"]):
    def with_related(self) -> "DeploymentQuerySet":
        return self.select_related("service", "environment", "version", "deployed_by", "group")

    def in_progress(self) -> "DeploymentQuerySet":
        return self.filter(status__in=Status.in_progress())

    def last_done(self) -> "DeploymentQuerySet":
        """The successful ones, the one that runs now first: what a target runs is the
        version of its last DONE deployment, by the time it finished."""
        return self.filter(status=Status.DONE).order_by(*LAST_DONE_ORDER)


class Deployment(models.Model):
    """One service at one version into one environment (and optionally one group)."""

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="deployments"
    )
    group = models.ForeignKey(
        Group, on_delete=models.PROTECT, null=True, blank=True, related_name="deployments"
    )
    version = models.ForeignKey(
        DeployableVersion, on_delete=models.PROTECT, related_name="deployments"
    )
    source_version = models.ForeignKey(
        DeployableVersion,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The version that ran before; cancel re-applies it.",
    )
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployments"
    )
    message = models.TextField(blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True)
    rendered_manifests = models.TextField(blank=True)  # shown: Secret values redacted
    # What the worker applies: the documents rendered once, at request time, with each
    # Secret value Fernet-encrypted (deployments.manifests.seal). Empty on deployments made
    # before they were stored: the worker renders those.
    manifest_documents: models.JSONField[list[Any], list[Any]] = models.JSONField(
        default=list, blank=True, editable=False
    )
    timeline: models.JSONField[list[Any], list[Any]] = models.JSONField(default=list, blank=True)
    environment_snapshot: models.JSONField[dict[str, Any], dict[str, Any]] = models.JSONField(
        default=dict, blank=True
    )
    override_reason = models.TextField(
        blank=True,
        help_text="Why the deployer overrode the blockers listed in overridden_blockers.",
    )
    overridden_blockers: models.JSONField[list[Any], list[Any]] = models.JSONField(
        default=list, blank=True
    )
    # The deployments one Deploy request created share a batch (followed on one page).
    batch = models.UUIDField(null=True, blank=True, editable=False, db_index=True)
    # "" for a deployment without a group: NULLs would not collide in the unique constraint.
    group_key = models.CharField(max_length=40, blank=True, editable=False)
    # The worker's lease: a deployment whose lease expired is resumed by another worker.
    lease_owner = models.CharField(max_length=100, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    applied_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Seconds a worker spent following the forward rollout: its deadline counts these, not the
    # wall time since it started (a rollout resumed after an hour without a worker is judged on
    # the cluster's state and gets the time nobody watched).
    watched_seconds = models.FloatField(default=0, editable=False)
    # The X-Request-ID of the request that asked for it: the worker's log lines carry it.
    request_id = models.CharField(max_length=64, blank=True, editable=False)
    # A revert (by hand or automatic): the deployment it undoes. An automatic revert is never
    # started for a deployment that has a cause (no revert of a revert).
    cause = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reverts",
        editable=False,
        help_text="The deployment this revert undoes.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # History pages: newest first, keyset on (created_at, id), filtered by one column.
            models.Index(fields=["-created_at", "-id"], name="deployment_recent_idx"),
            models.Index(fields=["environment", "-created_at"], name="deployment_env_idx"),
            models.Index(fields=["service", "-created_at"], name="deployment_service_idx"),
            models.Index(fields=["deployed_by", "-created_at"], name="deployment_user_idx"),
            models.Index(fields=["status", "-created_at"], name="deployment_status_idx"),
            # History filtered by environment and deployer (deployments migration 0012).
            models.Index(
                fields=["environment", "deployed_by", "-created_at"], name="deployment_env_user_idx"
            ),
            # Delivery metrics (history.metrics): "the next DONE of this target", "reverted by
            # a later deployment of this target".
            models.Index(
                fields=["service", "environment", "group_key", "finished_at"],
                name="deployment_target_finished_idx",
            ),
        ]
        constraints = [
            # At most one deployment in progress per target: the database, not a check in
            # Python, decides which of two concurrent requests proceeds.
            models.UniqueConstraint(
                fields=["service", "environment", "group_key"],
                condition=Q(status__in=["PENDING", "STARTED", "PENDING_CANCELLATION", "CANCELING"]),
                name="deployment_one_in_progress_per_target",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.service_id}→{self.environment_id} {self.status}"

    @property
    def can_be_cancelled(self) -> bool:
        """The rule, once: a PENDING deployment ends CANCELED; a STARTED one is rolled back,
        which needs a version that ran before it."""
        if self.status == Status.PENDING:
            return True
        return self.status == Status.STARTED and self.source_version_id is not None

    @property
    def can_be_reverted(self) -> bool:
        """A finished deployment (DONE or FAILED) can be undone by deploying the version that
        ran before it, when there was one and it is another version."""
        return self.status in (Status.DONE, Status.FAILED) and self.source_version_id not in (
            None,
            self.version_id,
        )

    def source_deployment(self) -> "Deployment | None":
        """The deployment whose manifests ran before this one (its version is source_version):
        the target's last DONE deployment requested before it. Only one deployment of a target
        is in progress at a time, so none finished in between."""
        if self.source_version_id is None:
            return None
        earlier = Deployment.objects.filter(
            service_id=self.service_id,
            environment_id=self.environment_id,
            group_key=self.group_key,
            version_id=self.source_version_id,
            pk__lt=self.pk,
        )
        return earlier.last_done().select_related("service", "environment").first()

    def transition_to(
        self,
        new_status: Status,
        *,
        reason: str = "",
        also: Mapping[str, Any] | None = None,
        subscribed: bool | None = None,
    ) -> None:
        """Move to new_status if the state machine allows it, guarded against races.

        The UPDATE is conditional on the status this instance last saw, so two workers (or a
        worker and a cancel request) cannot both move the same row; the loser gets
        InvalidTransition and must re-read. `also`: other columns written by the same UPDATE
        (the worker's lease when it claims a deployment). This is the only place a
        deployment's status changes (tests/deployments/test_status_machine.py checks it).

        With the status, in one transaction: its notifications' outbox rows and, for FAILED,
        the rollbacks that stick. When there is neither (no subscription is enabled, the usual
        case, and not FAILED), the conditional UPDATE is written alone: one statement, its
        own transaction (or a part of the caller's). On SQLite the writer's lock is then held
        only while SQLite runs that statement, never while this thread waits for the
        interpreter: following 100 rollouts, a status change in a transaction of its own
        (BEGIN, UPDATE, the subscriptions' SELECT, COMMIT) held the lock up to 50 ms (#16).
        `subscribed`: whether some subscription is enabled (notifications.events.subscribed),
        when the caller read it already (a batch of verdicts, once for all); None: read here,
        before the UPDATE.
        """
        current = Status(self.status)
        if not current.can_become(new_status):
            raise InvalidTransition(f"a {current} deployment cannot become {new_status}")
        changes: dict[str, Any] = {**(also or {}), "status": new_status}
        changes["updated_at"] = timezone.now()
        if new_status.is_terminal:
            changes.update(finished_at=changes["updated_at"], lease_owner="", lease_expires_at=None)
        if reason:
            changes["status_reason"] = reason
        from deployments.notifications import events
        from deployments.services.auto_revert import on_failed

        heard = str(new_status) in events.STATUS_EVENTS and (
            events.subscribed() if subscribed is None else subscribed
        )
        if not heard and new_status != Status.FAILED:
            self._set_status(current, changes)
            return
        with transaction.atomic():  # the status and its notifications' outbox rows, together
            self._set_status(current, changes)
            if heard:  # (subscriptions read above, once)
                events.status_changed(self)
            if new_status == Status.FAILED:  # rollbacks that stick, automatic revert
                on_failed(self, was=current)

    def _set_status(self, current: Status, changes: dict[str, Any]) -> None:
        updated = type(self).objects.filter(pk=self.pk, status=current).update(**changes)
        if updated != 1:
            raise InvalidTransition(f"deployment {self.pk} is no longer {current}")
        for field, value in changes.items():
            setattr(self, field, value)


class CIStatus(models.Model):
    """A CI result for a version (one row per CI context), reported through the API."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        SUCCESS = "success", "success"
        FAILURE = "failure", "failure"
        ERROR = "error", "error"

    version = models.ForeignKey(
        DeployableVersion, on_delete=models.CASCADE, related_name="ci_statuses"
    )
    context = models.CharField(max_length=100, default="ci", help_text="For example jenkins/unit.")
    state = models.CharField(max_length=10, choices=State.choices)
    url = models.URLField(max_length=500, blank=True)
    description = models.CharField(max_length=300, blank=True)
    reported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["context"]
        constraints = [
            models.UniqueConstraint(fields=["version", "context"], name="ci_status_unique_context")
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.context}: {self.state}"


class WorkerHeartbeat(models.Model):
    """One deployment worker process: written every second while it runs
    (deployments.engine.heartbeat), so that the pages and /readyz can tell that none runs."""

    name = models.CharField(max_length=100, unique=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    driving = models.PositiveIntegerField(default=0, help_text="Deployments it drives now.")

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return self.name


class BadVersionQuerySet(models.QuerySet["BadVersion"]):
    def active(self) -> "BadVersionQuerySet":
        """The marks in force: a version is bad while its mark is not undone."""
        return self.filter(unmarked_at__isnull=True)


class BadVersion(models.Model):
    """A version marked bad in one environment (rollbacks that stick): it cannot be deployed
    there again until a `manage` holder unmarks it, unless an `override_blockers` holder
    overrides with a reason. Marks are kept after unmarking: the history of a version."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="bad_versions")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="bad_versions"
    )
    sha = models.CharField(max_length=40, validators=[sha_validator])
    reason = models.TextField()
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: Apollo marked it (a FAILED verdict or an automatic revert).",
    )
    marked_at = models.DateTimeField(default=timezone.now)
    deployment = models.ForeignKey(
        Deployment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="bad_marks",
        help_text="The deployment whose revert or failure marked it.",
    )
    unmarked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    unmarked_at = models.DateTimeField(null=True, blank=True, help_text="Empty: still bad.")
    unmark_reason = models.TextField(blank=True)

    objects = BadVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-marked_at", "-id"]
        constraints = [
            # One mark in force per version and environment: two concurrent marks, one wins.
            # Its partial index also serves "is this sha bad here" at request time.
            models.UniqueConstraint(
                fields=["service", "environment", "sha"],
                condition=Q(unmarked_at__isnull=True),
                name="bad_version_one_active_mark",
            ),
            models.CheckConstraint(
                condition=Q(sha__regex=r"^[0-9a-f]{40}$"), name="bad_version_sha_40_hex"
            ),
        ]
        indexes = [
            # The API's and the admin's list per environment, newest first.
            models.Index(fields=["environment", "-marked_at"], name="bad_version_env_idx"),
        ]

    def __str__(self) -> str:
        state = "bad" if self.unmarked_at is None else "unmarked"
        return f"{self.service_id}@{self.sha[:12]} in {self.environment_id}: {state}"

    @property
    def marked_by_name(self) -> str:
        return self.marked_by.get_username() if self.marked_by is not None else "Apollo"


class RevertPolicy(models.Model):
    """What Apollo does by itself when a rollout ends FAILED in an environment (or, with a
    service, for that service there: the service's policy replaces the environment's)."""

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="revert_policies"
    )
    service = models.ForeignKey(
        Service,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="revert_policies",
        help_text="Empty: every service of the environment without a policy of its own.",
    )
    enabled = models.BooleanField(
        default=False,
        help_text="Revert automatically to the last DONE version when a rollout ends FAILED.",
    )
    mark_bad = models.BooleanField(
        default=True, help_text="Mark the FAILED version bad in the environment."
    )
    max_age = models.DurationField(
        null=True,
        blank=True,
        help_text="Do not revert to a last DONE deployment finished longer ago than this "
        "(e.g. 7 00:00:00 for a week). Empty: any age.",
    )
    may_pass_blockers = models.BooleanField(
        default=False, help_text="The automatic revert is not stopped by blockers."
    )

    class Meta:
        ordering = ["environment__name", "service__name"]
        verbose_name_plural = "revert policies"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "service"],
                condition=Q(service__isnull=False),
                name="revert_policy_one_per_service",
            ),
            models.UniqueConstraint(
                fields=["environment"],
                condition=Q(service__isnull=True),
                name="revert_policy_one_per_environment",
            ),
        ]

    def __str__(self) -> str:
        return f"revert policy of {self.environment_id}/{self.service_id or '*'}"

    def clean(self) -> None:
        if self.max_age is not None and self.max_age.total_seconds() <= 0:
            raise ValidationError({"max_age": "A maximum age is longer than zero (or empty)."})


class AutomaticRevert(models.Model):
    """What Apollo decided about one FAILED deployment of an environment with a revert policy:
    the revert it requested, or why it did not. One row per FAILED deployment (the database
    refuses a second automatic revert of the same failure)."""

    failed = models.OneToOneField(
        Deployment, on_delete=models.CASCADE, related_name="automatic_revert"
    )
    revert = models.OneToOneField(
        Deployment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="automatic_revert_of",
    )
    explanation = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"automatic revert of {self.failed_id}: {self.revert_id or 'none'}"
