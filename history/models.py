from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class AuditEvent(models.Model):
    """Who changed what, written by the service that makes the change, in its transaction."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    actor_name = models.CharField(
        max_length=150, help_text="Kept when the user is deleted; 'system' for the worker."
    )
    action = models.CharField(max_length=60, db_index=True)
    target_type = models.CharField(max_length=60, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    # What the event is about, for who may read it on the History page (permissions.rules,
    # rule 6): a service and/or an environment, or neither (clusters, tokens, users: only
    # superusers and `manage` holders read those). SET_NULL: history outlives what it is about.
    service = models.ForeignKey(
        "deployments.Service",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    environment = models.ForeignKey(
        "environments.Environment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    summary = models.CharField(max_length=500)
    data: models.JSONField[dict[str, Any], dict[str, Any]] = models.JSONField(
        default=dict, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            # The History page's events, newest first, one kind (action prefix) at a time.
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name}: {self.summary}"


class DeploymentOutcome(models.Model):
    """What the delivery metrics need of one deployment, in integers: derived from the
    deployments by history.metrics.outcomes (at read time, incrementally), never edited by hand.

    A row is written when the metrics first see the deployment and is final once the
    deployment has ended (DONE, FAILED, CANCELED). What a later deployment changes is written
    when that one is seen: `reverted` (a later DONE went back from this version) and
    `next_done_ms` (when the target's next DONE finished: the time to restore). Times are
    milliseconds since the epoch, so the figures are integer arithmetic on both databases.
    """

    class Outcome(models.TextChoices):
        RUNNING = "", "not ended yet"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        ROLLED_BACK = "rolled_back", "cancelled after it started"
        NOT_RUN = "not_run", "cancelled before it started"

    deployment = models.OneToOneField(
        "deployments.Deployment", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # Copies of the deployment's columns (plain ids: the filters of a user's visibility and of
    # the page's scope apply to this table alone, without a join).
    service_id = models.BigIntegerField()
    environment_id = models.BigIntegerField()
    group_key = models.CharField(max_length=40, blank=True)
    version_id = models.BigIntegerField()
    source_version_id = models.BigIntegerField(null=True)
    final = models.BooleanField(default=False)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True)
    finished_ms = models.BigIntegerField(null=True)
    lead_seconds = models.BigIntegerField(null=True)  # DONE: commit time -> finished
    next_done_ms = models.BigIntegerField(null=True)
    reverted = models.BooleanField(default=False)
    # The sync that made the row final (a random number): the updates it triggers on earlier
    # rows start from the rows of their own sync.
    batch = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            # The figures of a period: team-wide, per service, per environment.
            models.Index(fields=["finished_ms", "outcome"], name="outcome_period_idx"),
            models.Index(fields=["service_id", "finished_ms"], name="outcome_service_idx"),
            models.Index(fields=["environment_id", "finished_ms"], name="outcome_env_idx"),
            # "The next DONE of this target" (time to restore).
            models.Index(
                fields=["service_id", "environment_id", "group_key", "finished_ms"],
                name="outcome_target_idx",
            ),
            # "A later DONE of this target went back from this version" (reverted).
            models.Index(
                fields=["service_id", "environment_id", "group_key", "version_id"],
                name="outcome_revert_idx",
            ),
            models.Index(fields=["batch"], name="outcome_batch_idx"),
            # The deployments still running when last seen, read again at every sync.
            models.Index(
                fields=["deployment"], condition=Q(final=False), name="outcome_running_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"deployment {self.deployment_id}: {self.outcome or 'running'}"
