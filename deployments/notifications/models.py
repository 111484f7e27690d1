"""Subscriptions and their outbox (one Delivery per event and subscription)."""

from typing import Any

from django.conf import settings
from django.db import models

from environments import crypto
from environments.models import Environment


class Event(models.TextChoices):
    REQUESTED = "requested", "Requested"
    STARTED = "started", "Started"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    REVERTED = "reverted", "Reverted (a revert was requested)"
    BLOCKED = "blocked", "Blocked (refused by a blocker)"
    OVERRIDDEN = "overridden", "Overridden (deployed past a blocker)"
    MARKED_BAD = "marked_bad", "Marked bad (a version refused in an environment until unmarked)"


def all_events() -> list[str]:
    return [e.value for e in Event]


class Subscription(models.Model):
    """Who hears about which deployments: a service and/or an environment (empty = all)."""

    class Kind(models.TextChoices):
        SLACK = "slack", "Slack incoming webhook"
        WEBHOOK = "webhook", "Signed HTTPS webhook"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.WEBHOOK)
    service = models.ForeignKey(
        "deployments.Service",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="subscriptions",
        help_text="Empty: every service.",
    )
    environment = models.ForeignKey(
        Environment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="subscriptions",
        help_text="Empty: every environment.",
    )
    events: models.JSONField[list[str], list[str]] = models.JSONField(default=all_events)
    enabled = models.BooleanField(default=True)
    # SECURITY: the URL (a Slack webhook URL is itself a credential) and the signing secret are
    # Fernet ciphertext, write-only in every form; only the host is shown.
    url_ciphertext = models.TextField(editable=False)
    url_host = models.CharField(max_length=255, editable=False)
    secret_ciphertext = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # The delivering worker's lease: one worker delivers a subscription's queue at a time,
    # so its deliveries leave in order.
    lease_owner = models.CharField(max_length=100, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def set_url(self, url: str) -> None:
        from urllib.parse import urlsplit

        self.url_ciphertext = crypto.encrypt(url)
        self.url_host = urlsplit(url).hostname or ""

    @property
    def url(self) -> str:
        return crypto.decrypt(self.url_ciphertext)

    def set_secret(self, secret: str) -> None:
        self.secret_ciphertext = crypto.encrypt(secret)

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_ciphertext)

    @property
    def scope(self) -> str:
        service = self.service.name if self.service_id and self.service else "every service"
        env = self.environment.name if self.environment_id and self.environment else "everywhere"
        return f"{service} in {env}"


class Delivery(models.Model):
    """One event for one subscription: the outbox row, then its delivery log."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        GAVE_UP = "gave_up", "Gave up"

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    deployment = models.ForeignKey(
        "deployments.Deployment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    event = models.CharField(max_length=20, choices=Event.choices)
    payload: models.JSONField[dict[str, Any], dict[str, Any]] = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The deliverer's look: the oldest pending delivery of each subscription.
            models.Index(fields=["state", "subscription", "id"], name="delivery_queue_idx"),
        ]

    def __str__(self) -> str:
        deployment = (self.payload.get("deployment") or {}).get("id", "-")
        return f"{self.event} #{deployment} → {self.subscription}"
