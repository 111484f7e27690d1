"""Seed the kubesim demo: a cluster, staging and production, services, versions, personas.

Idempotent: re-running updates what exists. Every persona gets a freshly generated password,
printed once and never stored in plain text; `jenkins` (no password) gets a fresh API token
that may register versions only, and its previous demo token is revoked.
"""

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from deployments import demo
from environments.models import Cluster, Environment
from permissions.models import ApiToken, Grant
from permissions.services import grant
from permissions.tokens import issue_token, revoke_token
from permissions.verbs import Verb

PERSONAS = {
    "alice": "admin: may do everything",
    "bob": "may deploy, cancel, restart, read logs and open a shell in staging; views production",
    "carol": "may view everything, logs included; deploys and changes nothing",
    "mallory": "signed in, no grants",
}
JENKINS_TOKEN = "demo CI"  # noqa: S105  (the name of the demo token, not a secret)
# The demo clusters and Apollo's context in their kubeconfig.
DEMO_CLUSTERS = {"kubesim": "kubesim", "kubernetes": "apollo"}
BOB_VERBS = [Verb.VIEW, Verb.DEPLOY, Verb.CANCEL, Verb.RESTART, Verb.VIEW_LOGS, Verb.EXEC]


class Command(BaseCommand):
    help = "Create or refresh the demo: personas (new passwords), cluster, environments, services."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--personas-only", action="store_true", help="only the personas, no cluster data"
        )
        parser.add_argument(
            "--cluster",
            choices=sorted(DEMO_CLUSTERS),
            default="kubesim",
            help="the demo cluster: kubesim or the real control plane (make cluster)",
        )
        parser.add_argument("--kubeconfig", help="the cluster's kubeconfig (APOLLO_KUBECONFIG)")

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            passwords = {name: self._persona(name) for name in PERSONAS}
            ci_key = self._jenkins()
            if not options["personas_only"]:
                users = {name: User.objects.get(username=name) for name in PERSONAS}
                kubeconfig = Path(
                    options["kubeconfig"]
                    or settings.APOLLO_KUBECONFIG
                    or settings.VAR_DIR / "kubesim.kubeconfig"
                )
                self._demo(users=users, cluster_kind=options["cluster"], kubeconfig=kubeconfig)
        for name, role in PERSONAS.items():
            self.stdout.write(f"  {name:8} password '{passwords[name]}'  ({role})")
        # SECURITY: shown once, like the passwords; only its digest is stored.
        self.stdout.write(f"  jenkins  API token '{ci_key}'  (may register versions only)")
        self.stdout.write(f"Demo admin: username 'alice', password '{passwords['alice']}'")

    def _persona(self, name: str) -> str:
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(
            username=name, defaults={"email": f"{name}@example.com"}
        )
        user.is_staff = user.is_superuser = name == "alice"
        user.set_password(password)
        user.save()
        return password

    def _jenkins(self) -> str:
        """The CI persona: no password, the right to register versions, a new API token."""
        user, _ = User.objects.get_or_create(
            username="jenkins", defaults={"email": "jenkins@example.com"}
        )
        user.is_staff = user.is_superuser = False
        user.set_unusable_password()
        user.save()
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="deployments", codename="add_deployableversion"
            )
        )
        for old in ApiToken.objects.filter(user=user, name=JENKINS_TOKEN):
            revoke_token(actor=None, token=old, reason="the demo was seeded again")
        return issue_token(actor=None, user=user, name=JENKINS_TOKEN)[1]

    def _demo(self, *, users: dict[str, User], cluster_kind: str, kubeconfig: Path) -> None:
        cluster, _ = Cluster.objects.update_or_create(
            name=cluster_kind,
            defaults={
                "connection": Cluster.Connection.KUBECONFIG,
                "kubeconfig_path": str(kubeconfig),
                "kubeconfig_context": DEMO_CLUSTERS[cluster_kind],
            },
        )
        staging, _ = Environment.objects.update_or_create(
            name="staging",
            defaults={
                "cluster": cluster,
                "namespace": "staging",
                "availability": "staging",
                "region": "eu-west",
                "rollout_timeout_seconds": 120,
            },
        )
        Environment.objects.update_or_create(
            name="production",
            defaults={
                "cluster": cluster,
                "namespace": "production",
                "availability": "production",
                "region": "eu-west",
                "node_port_coefficient": 100,
                "require_deployment_message": True,
                "rollout_timeout_seconds": 300,
            },
        )
        demo.seed_services()
        if not Grant.objects.filter(note="demo: bob in staging").exists():
            grant(
                actor=users["alice"],
                user=users["bob"],
                verbs=BOB_VERBS,
                availability=staging.availability,
                note="demo: bob in staging",
            )
        # SECURITY: view is granted explicitly; mallory, with no grant, sees nothing at all.
        if not Grant.objects.filter(note="demo: bob views production").exists():
            grant(
                actor=users["alice"],
                user=users["bob"],
                verbs=[Verb.VIEW],
                availability="production",
                note="demo: bob views production",
            )
        for availability in ("staging", "production"):
            note = f"demo: carol reads {availability}"
            if not Grant.objects.filter(note=note).exists():
                grant(
                    actor=users["alice"],
                    user=users["carol"],
                    verbs=[Verb.VIEW, Verb.VIEW_LOGS],
                    availability=availability,
                    note=note,
                )
