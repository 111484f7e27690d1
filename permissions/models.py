"""Grants (who may do which verb where) and blockers (rules that refuse deployments).

A Grant is a *scope* plus an *effect*: exactly one of
  - one (service, environment) pair,
  - one environment,
  - one service,
  - every environment of an availability (for example all ``production``),
and ALLOW or DENY. Who holds the grant and for which verbs is stored object-level with
django-guardian, in the direct foreign-key models GrantUserObjectPermission and
GrantGroupObjectPermission (one row per holder and verb; the verbs are Grant's custom
permissions). How grants combine is the rule in ``permissions.rules``.
"""

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from deployments.models import Service
from environments.models import Environment, dns_label
from permissions.sessions import UserSession  # noqa: F401 - registered with this app's models
from permissions.verbs import Effect, Verb

RULE_HELP = (
    "How grants decide: among the grants that match the target and are held by the user or one "
    "of the user's groups, the most specific scope decides: (service, environment) pair > "
    "environment > service > availability. At equal specificity DENY wins (user and group grants "
    "alike). No matching grant means refused. Every other verb's ALLOW also allows view at its "
    "scope; only a DENY of view itself hides. Superusers may do everything; inactive users "
    "nothing. Only a superuser may create, change or revoke a grant held by themselves or by "
    "a group they belong to."
)


class Grant(models.Model):
    """A scope and an effect; holders and verbs live in the guardian rows below."""

    effect = models.CharField(max_length=5, choices=Effect.choices, default=Effect.ALLOW)
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, null=True, blank=True, related_name="grants"
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, null=True, blank=True, related_name="grants"
    )
    availability = models.CharField(
        max_length=50,
        blank=True,
        db_index=True,
        help_text="Every environment of this availability (for example production). "
        "Leave service and environment empty when you use it.",
    )
    note = models.CharField(max_length=300, blank=True, help_text="Why this grant exists.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [(verb.value, verb.label) for verb in Verb]
        constraints = [
            # Exactly one of the four scope shapes; the rule's specificity depends on it.
            models.CheckConstraint(
                name="grant_one_scope",
                condition=(
                    Q(service__isnull=False, environment__isnull=False, availability="")
                    | Q(service__isnull=True, environment__isnull=False, availability="")
                    | Q(service__isnull=False, environment__isnull=True, availability="")
                    | (Q(service__isnull=True, environment__isnull=True) & ~Q(availability=""))
                ),
                violation_error_message="Choose exactly one scope: a service, an environment, "
                "a service and an environment, or an availability alone.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.effect} on {self.scope_label}"

    @property
    def scope_label(self) -> str:
        if self.service_id is not None and self.environment_id is not None:
            return f"service {self.service} in environment {self.environment}"
        if self.environment_id is not None:
            return f"environment {self.environment}"
        if self.service_id is not None:
            return f"service {self.service}"
        return f"availability {self.availability}"


class GrantUserObjectPermission(UserObjectPermissionBase):
    """guardian direct foreign-key row: this user holds this verb on this grant."""

    content_object = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="user_perms")

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "user verb on a grant"


class GrantGroupObjectPermission(GroupObjectPermissionBase):
    """guardian direct foreign-key row: this group holds this verb on this grant."""

    content_object = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="group_perms")

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = "group verb on a grant"


class Blocker(models.Model):
    """A rule that refuses deployments in its scope while it is active.

    The scope is the conjunction of the fields that are set (service, environment or
    availability, and a group name); none set means every deployment. ``config`` holds the
    kind's settings and is parsed by ``permissions.blocker_config``; a config that does not
    parse blocks (fail closed).
    """

    class Kind(models.TextChoices):
        UNCONDITIONAL = "unconditional", "unconditional"
        TIME_WINDOW = "time_window", "time window"
        BRANCH = "branch", "branch allow-list"
        CONCURRENCY = "concurrency", "concurrency"
        CI_STATUS = "ci_status", "CI status"
        SINGLE_REGION = "single_region", "single region"
        PROMOTION = "promotion", "promotion"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, null=True, blank=True, related_name="blockers"
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, null=True, blank=True, related_name="blockers"
    )
    availability = models.CharField(max_length=50, blank=True, db_index=True)
    group_name = models.CharField(
        "group",
        max_length=40,
        blank=True,
        validators=[dns_label],
        help_text="Only deployments and scaling of groups with this name (for example eu), in "
        "whatever service and environment the other fields allow. Empty: grouped and ungrouped "
        "deployments alike.",
    )
    active = models.BooleanField(default=True)
    overridable = models.BooleanField(
        default=True,
        help_text="Users with the override_blockers verb may deploy past it by giving a reason.",
    )
    config: models.JSONField[dict[str, Any], dict[str, Any]] = models.JSONField(
        default=dict, blank=True
    )
    exempt_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="blocker_exemptions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="blocker_environment_or_availability",
                condition=Q(environment__isnull=True) | Q(availability=""),
                violation_error_message="Scope a blocker to an environment or to an "
                "availability, not both.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def scope_label(self) -> str:
        parts = []
        if self.service_id is not None:
            parts.append(f"service {self.service}")
        if self.environment_id is not None:
            parts.append(f"environment {self.environment}")
        if self.availability:
            parts.append(f"availability {self.availability}")
        label = " in ".join(parts) or "every deployment"
        if self.group_name:
            label = f"group {self.group_name} of {label}"
        return label


class ApiToken(models.Model):
    """An API token (`Authorization: Token <key>`), stored only as a SHA-256 digest.

    SECURITY: the key is shown once, when issued; the database keeps its digest and a short
    public prefix to find it, so a copy of the database gives no usable token. The key holds
    256 bits of randomness, so an unsalted fast hash is enough (as with GitHub tokens).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What uses it, e.g. 'Jenkins'.")
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["user__username", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) for {self.user}"


class ExternalIdentity(models.Model):
    """A user who logs in through the identity provider (OpenID Connect), by the provider's
    issuer and subject: the one stable identifier an OpenID provider gives a person.

    SECURITY: a log-in is matched by (issuer, subject) only, never by e-mail or user name, so
    an account at the provider whose name or e-mail equals a local user's (an admin's) never
    logs in as that user (permissions/oidc.py).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_groups = models.JSONField(
        default=list, blank=True, help_text="The groups claim of the last log-in, as sent."
    )

    class Meta:
        verbose_name_plural = "external identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="unique_external_identity")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.subject} at {self.issuer})"
