from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from environments import crypto

# Kubernetes namespace names are DNS-1123 labels.
dns_label = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "Use a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters.",
)


class Cluster(models.Model):
    """How to reach one Kubernetes API server. Credentials are encrypted at rest."""

    class Connection(models.TextChoices):
        KUBECONFIG = "kubeconfig", "kubeconfig file and context"
        IN_CLUSTER = "in_cluster", "in-cluster service account"
        TOKEN = "token", "API server URL, bearer token and CA"

    name = models.CharField(max_length=100, unique=True)
    connection = models.CharField(
        max_length=20, choices=Connection.choices, default=Connection.KUBECONFIG
    )
    kubeconfig_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="Path of a kubeconfig file on the Apollo host; empty means APOLLO_KUBECONFIG.",
    )
    kubeconfig_context = models.CharField(max_length=200, blank=True)
    api_url = models.URLField(blank=True, help_text="For the token connection: https://host:port")
    ca_certificate = models.TextField(
        blank=True, help_text="PEM of the API server's CA (for the token connection)."
    )
    verify_tls = models.BooleanField(default=True)
    # SECURITY: Fernet ciphertext; never rendered in pages, forms or the admin.
    token_ciphertext = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_token(self, token: str) -> None:
        self.token_ciphertext = crypto.encrypt(token)

    def get_token(self) -> str:
        return crypto.decrypt(self.token_ciphertext)

    @property
    def has_token(self) -> bool:
        return self.token_ciphertext != ""


class Environment(models.Model):
    """A cluster and a namespace, with the settings deployments into it follow."""

    name = models.CharField(max_length=100, unique=True, validators=[dns_label])
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="environments")
    namespace = models.CharField(max_length=63, validators=[dns_label])
    availability = models.CharField(
        max_length=50, db_index=True, help_text="For example staging or production."
    )
    region = models.CharField(max_length=50, blank=True)
    node_port_coefficient = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(2767)],
        help_text="Added to every nodePort so virtual environments on one cluster do not collide.",
    )
    variables: models.JSONField[dict[str, Any], dict[str, Any]] = models.JSONField(
        default=dict, blank=True, help_text="Mustache variables for every service's templates."
    )
    concurrency_limit = models.PositiveIntegerField(
        default=0, help_text="At most this many deployments in progress at once; 0 is unlimited."
    )
    require_deployment_message = models.BooleanField(default=False)
    allow_privileged_workloads = models.BooleanField(
        default=False,
        help_text="Let manifests use privileged containers, privilege escalation, added "
        "capabilities, hostNetwork/hostPID/hostIPC, hostPath volumes, hostPorts and Windows "
        "hostProcess (the manifest policy refuses them otherwise).",
    )
    rollout_timeout_seconds = models.PositiveIntegerField(
        default=900,
        validators=[MinValueValidator(10)],
        help_text="A rollout still unfinished after this long ends FAILED.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "namespace"], name="environment_unique_cluster_namespace"
            )
        ]

    def __str__(self) -> str:
        return self.name
