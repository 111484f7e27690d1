"""Four weeks of plausible deployment history for the demo's Metrics page (seed_history).

checkout, catalog and payments: bob deploys new commits to staging most working days, alice
promotes to production; some rollouts fail and are fixed by the next commit, and now and then a
production deployment is reverted. Deterministic (a seeded random generator), idempotent (the
rows carry request_id "demo-history"; a second run adds nothing), and all in the past, finished:
nothing here is in progress, and the versions are older than the demo's registered ones, so the
Deploy page still offers those first.
"""

import hashlib
import random
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from deployments.models import DeployableVersion, Deployment, Service
from deployments.status import Status
from environments.models import Environment

MARK = "demo-history"
DAYS = 28
SERVICES = ("checkout", "catalog", "payments")
MESSAGES = [
    "Tidy the basket totals",
    "Cache the product list for a minute",
    "Retry the payment provider once on a timeout",
    "Log the order id with every line",
    "Raise the connection pool to 20",
    "Fix the currency of refunds",
    "Show the delivery date on the receipt",
    "Upgrade the JSON library",
]


def seed_history(*, now: datetime | None = None) -> int:
    """Create the history unless it exists; returns how many deployments were created."""
    if Deployment.objects.filter(request_id=MARK).exists():
        return 0
    staging = Environment.objects.filter(name="staging").first()
    production = Environment.objects.filter(name="production").first()
    deployer = User.objects.filter(username="bob").first()
    promoter = User.objects.filter(username="alice").first()
    if staging is None or production is None or deployer is None or promoter is None:
        return 0
    now = (now or timezone.now()).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(14)  # noqa: S311 (demo data, not a secret)
    created = 0
    with transaction.atomic():
        for service in Service.objects.filter(name__in=SERVICES).order_by("name"):
            created += _service_history(
                rng, service, staging, production, deployer, promoter, now - timedelta(days=DAYS)
            )
    return created


def _version(rng: random.Random, service: Service, n: int, at: datetime) -> DeployableVersion:
    sha = hashlib.sha1(f"history-{service.name}-{n}".encode(), usedforsecurity=False).hexdigest()
    committed = at - timedelta(hours=rng.randint(1, 30), minutes=rng.randint(0, 59))
    version, _ = DeployableVersion.objects.get_or_create(
        service=service,
        git_commit_sha=sha,
        defaults={
            "branch": "main",
            "commit_author": rng.choice(["Alice Adams", "Bob Brown", "Dan Diaz"]),
            "commit_message": rng.choice(MESSAGES),
            "commit_url": f"https://git.example.com/shop/{service.name}/commit/{sha}",
            "repository_url": f"https://git.example.com/shop/{service.name}",
            "committed_at": committed,
        },
    )
    # Registered when CI built it (auto_now_add wrote "now").
    DeployableVersion.objects.filter(pk=version.pk).update(
        created_at=committed + timedelta(minutes=12)
    )
    return version


def _deploy(
    *,
    service: Service,
    environment: Environment,
    user: User,
    version: DeployableVersion,
    source: DeployableVersion | None,
    status: Status,
    at: datetime,
    minutes: int,
    message: str,
    reason: str = "",
) -> None:
    finished = at + timedelta(minutes=minutes)
    deployment = Deployment.objects.create(
        service=service,
        environment=environment,
        version=version,
        source_version=source,
        deployed_by=user,
        message=message,
        status=status,
        status_reason=reason,
        started_at=at,
        finished_at=finished,
        request_id=MARK,
    )
    Deployment.objects.filter(pk=deployment.pk).update(created_at=at, updated_at=finished)


def _service_history(
    rng: random.Random,
    service: Service,
    staging: Environment,
    production: Environment,
    deployer: User,
    promoter: User,
    start: datetime,
) -> int:
    count, n = 0, 0
    running: dict[int, DeployableVersion | None] = {staging.pk: None, production.pk: None}
    good: DeployableVersion | None = None  # the last version DONE in staging
    for day in range(DAYS):
        date = start + timedelta(days=day)
        if date.weekday() >= 5:
            continue  # no deployments at the weekend
        for slot in range(rng.choice([0, 1, 1, 2, 3])):
            at = date.replace(hour=9 + 3 * slot) + timedelta(minutes=rng.randint(0, 50))
            n += 1
            version = _version(rng, service, n, at)
            failed = rng.random() < 0.15
            _deploy(
                service=service,
                environment=staging,
                user=deployer,
                version=version,
                source=running[staging.pk],
                status=Status.FAILED if failed else Status.DONE,
                at=at,
                minutes=rng.randint(2, 6),
                message=version.commit_message,
                reason="new pods crash-looped (CrashLoopBackOff)" if failed else "",
            )
            count += 1
            if not failed:
                running[staging.pk] = good = version
        if good is not None and good != running[production.pk] and rng.random() < 0.6:
            at = date.replace(hour=16) + timedelta(minutes=rng.randint(0, 50))
            before = running[production.pk]
            failed = rng.random() < 0.08
            _deploy(
                service=service,
                environment=production,
                user=promoter,
                version=good,
                source=before,
                status=Status.FAILED if failed else Status.DONE,
                at=at,
                minutes=rng.randint(3, 9),
                message=f"Release {good.git_commit_sha[:7]}",
                reason="rollout did not become available in time" if failed else "",
            )
            count += 1
            if failed:
                continue
            running[production.pk] = good
            if before is not None and rng.random() < 0.1:  # a bad release, reverted
                _deploy(
                    service=service,
                    environment=production,
                    user=promoter,
                    version=before,
                    source=good,
                    status=Status.DONE,
                    at=at + timedelta(minutes=rng.randint(20, 70)),
                    minutes=4,
                    message="Revert: error rate up after the release",
                )
                count += 1
                running[production.pk] = before
    return count
