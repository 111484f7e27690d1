"""Demo services and versions for `make run`: kubesim accepts any image not marked missing."""

import hashlib
from datetime import timedelta

from django.utils import timezone

from deployments.models import DeployableVersion, Group, Service
from environments.models import Environment


def _deployment_template(*env: tuple[str, str], jolokia: bool = False) -> str:
    """The demo services' Deployment template with these environment variables (and, with
    `jolokia`, a Jolokia agent's port: the pod gets a Jolokia link on the environment page)."""
    env_lines = "".join(
        f'            - {{name: {name}, value: "{value}"}}\n' for name, value in env
    )
    agent = "            - {containerPort: 8778, name: jolokia}\n" if jolokia else ""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{service}}}}
spec:
  replicas: {{{{replicas}}}}
  progressDeadlineSeconds: 60
  selector:
    matchLabels: {{app: {{{{service}}}}}}
  template:
    metadata:
      labels: {{app: {{{{service}}}}}}
    spec:
      containers:
        - name: app
          image: {{{{image}}}}
          ports:
            - {{containerPort: 8080, name: http}}
{agent}          env:
{env_lines}"""


DEPLOYMENT = _deployment_template(("ENVIRONMENT", "{{environment}}"), ("REGION", "{{region}}"))
# payments is the demo's Java service: its container port named `jolokia` is where kubesim's
# pods serve a Jolokia agent, so its pods get a Jolokia link (README, "Jolokia").
JOLOKIA_DEPLOYMENT = _deployment_template(
    ("ENVIRONMENT", "{{environment}}"), ("REGION", "{{region}}"), jolokia=True
)
WITH_JOLOKIA = {"payments"}
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{service}}
spec:
  type: NodePort
  selector: {app: {{service}}}
  ports:
    - {port: 80, targetPort: 8080, nodePort: {{node_port}}}
"""
INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{service}}
spec:
  rules:
    - host: {{service}}.{{environment}}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {name: {{service}}, port: {number: 80}}
"""
SERVICES = [
    ("checkout", "registry.example.com/shop/checkout", 30080, True, 2),
    ("catalog", "registry.example.com/shop/catalog", 30081, False, 2),
    ("payments", "registry.example.com/shop/payments", 30082, False, 1),
    # Its images are "missing" by kubesim's naming convention: every deploy fails, on purpose.
    ("legacy-missing", "registry.example.com/shop/missing-legacy", 30083, False, 1),
]
# One service deployed per group: a copy per region, each with its own variables and replicas.
INGEST_DEPLOYMENT = _deployment_template(
    ("ENVIRONMENT", "{{environment}}"),
    ("INGEST_REGION", "{{ingest_region}}"),
    ("INGEST_QUEUE", "{{queue}}"),
)
INGEST_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{service}}
spec:
  selector: {app: {{service}}}
  ports:
    - {port: 80, targetPort: 8080}
"""
# group -> (region variable, replicas in staging, replicas in production)
INGEST_GROUPS = {"eu": ("eu-west-1", 2, 3), "us": ("us-east-1", 2, 3), "apac": ("ap-south-1", 1, 2)}
COMMITS = [
    ("main", "Alice Adams", "Add express checkout for returning customers"),
    ("main", "Bob Brown", "Fix rounding of discounts in the basket"),
    ("feature/search", "Carol Chen", "Try a new ranking for search results"),
    ("main", "Dan Diaz", "Upgrade the HTTP client and retry idempotent calls"),
]


def seed_services() -> None:
    for name, repository, node_port, ingress, replicas in SERVICES:
        service, _ = Service.objects.update_or_create(
            name=name,
            defaults={
                "image_repository": repository,
                "git_repository_url": f"https://git.example.com/shop/{name}",
                "deployment_template": JOLOKIA_DEPLOYMENT if name in WITH_JOLOKIA else DEPLOYMENT,
                "service_template": SERVICE,
                "ingress_template": INGRESS if ingress else "",
                "default_variables": {"node_port": node_port, "replicas": replicas},
            },
        )
        _seed_versions(service)
    _seed_ingest()


def _seed_versions(service: Service) -> None:
    now, name = timezone.now(), service.name
    for age, (branch, author, message) in enumerate(COMMITS):
        sha = hashlib.sha1(f"{name}-{age}".encode(), usedforsecurity=False).hexdigest()
        DeployableVersion.objects.get_or_create(
            service=service,
            git_commit_sha=sha,
            defaults={
                "branch": branch,
                "commit_author": author,
                "commit_message": message,
                "commit_url": f"https://git.example.com/shop/{name}/commit/{sha}",
                "repository_url": f"https://git.example.com/shop/{name}",
                "committed_at": now - timedelta(hours=6 * (len(COMMITS) - age)),
            },
        )


def _seed_ingest() -> None:
    """ingest, deployed per group: eu, us and apac in staging and production (those that exist)."""
    service, _ = Service.objects.update_or_create(
        name="ingest",
        defaults={
            "image_repository": "registry.example.com/shop/ingest",
            "git_repository_url": "https://git.example.com/shop/ingest",
            "deployment_template": INGEST_DEPLOYMENT,
            "service_template": INGEST_SERVICE,
            "ingress_template": "",
            "default_variables": {"queue": "events"},
            "deployed_per_group": True,
        },
    )
    _seed_versions(service)
    environments = Environment.objects.filter(name__in=["staging", "production"])
    for environment in environments:
        production = environment.name == "production"
        for name, (region, staging_replicas, production_replicas) in INGEST_GROUPS.items():
            Group.objects.update_or_create(
                service=service,
                environment=environment,
                name=name,
                defaults={
                    "scaling_factor": production_replicas if production else staging_replicas,
                    "variables": {"ingest_region": region, "queue": f"events-{name}"},
                },
            )
