"""Metrics page server time with 100,000 deployments (20 services, 50 environments, ~70 days,
one a minute): team-wide over 30 days and over a whole year (every row), one service, one
environment, and the JSON export, against a trivial view in the same run (bench.common); SQL
statements per request; and the one-time catch-up of the first view, which writes the metrics'
table (history.metrics.outcomes) for the 100,000 deployments.

The reader is an ordinary user who may view every (staging) environment, so the visibility
filter is part of what is measured. Quick by default (under a minute, most of it writing the
rows); `--deployments N` and `--repeat N` change the size.

Runs on its own SQLite database under var/ (BENCH_DATABASE_URL overrides: a PostgreSQL
database of its own, which it creates and drops, see bench.common), never on the database
DATABASE_URL names, so that a benchmark cannot touch real data.
"""

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import use_bench_database

BENCH_DB = use_bench_database("metrics")

ENVIRONMENTS = 50
SERVICES = 20
DEPLOYMENTS = 100_000
REPEAT = 20
STATUSES = ["DONE"] * 16 + ["FAILED"] * 3 + ["CANCELED"]
BASE = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD = "start=2026-01-20&end=2026-02-18"  # 30 days in the middle of the ~70 the rows span
YEAR = "start=2025-06-01&end=2026-05-31"  # 366 days: every row


def _populate(deployments: int) -> Any:
    from django.contrib.auth.models import User
    from django.db import connection

    from deployments.models import DeployableVersion, Deployment, Service
    from environments.models import Cluster, Environment
    from permissions.services import grant
    from permissions.verbs import Verb

    user = User.objects.create_user("reader", password="bench-pw-0123")
    deployer = User.objects.create_user("deployer", password="bench-pw-0123")
    cluster = Cluster.objects.create(name="bench")
    environments = Environment.objects.bulk_create(
        Environment(name=f"env-{i}", cluster=cluster, namespace=f"ns-{i}", availability="staging")
        for i in range(ENVIRONMENTS)
    )
    services = Service.objects.bulk_create(
        Service(name=f"svc-{i}", image_repository=f"demo/svc-{i}", deployment_template="x")
        for i in range(SERVICES)
    )
    # Commits an hour to a day before the start: lead times of a few hours to ~70 days.
    versions = DeployableVersion.objects.bulk_create(
        DeployableVersion(
            service=s,
            git_commit_sha=f"{i:040x}",
            committed_at=BASE + timedelta(minutes=i * 97 % 1440) - timedelta(days=1),
        )
        for i, s in enumerate(services * 50)
    )
    n = len(versions)
    Deployment.objects.bulk_create(
        (
            Deployment(
                service=versions[i % n].service,
                version=versions[i % n],
                # the version before on the same service: every so often a revert follows
                source_version=versions[(i - SERVICES) % n] if i >= SERVICES else None,
                environment=environments[(i * 7) % ENVIRONMENTS],
                deployed_by=deployer,
                status=STATUSES[(i // 7) % len(STATUSES)],
                # One a minute over ~70 days; each took 3 minutes.
                started_at=BASE + timedelta(minutes=i),
                finished_at=BASE + timedelta(minutes=i + 3),
            )
            for i in range(deployments)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    grant(actor=None, verbs=[Verb.VIEW], user=user, availability="staging", note="bench")
    return user


def main(deployments: int = DEPLOYMENTS, repeat: int = REPEAT) -> dict[str, Any]:
    from bench.common import (
        analyze_server_database,
        count_queries,
        fresh_site,
        signed_in,
        time_pages,
        write_result,
    )

    started = time.perf_counter()
    user = fresh_site(BENCH_DB, partial(_populate, deployments))
    populated = time.perf_counter() - started
    from django.db import connection

    from history.models import DeploymentOutcome

    pages = {
        "metrics page, team-wide, 30 days": f"/history/metrics/?{PERIOD}",
        "metrics page, team-wide, a year (every row)": f"/history/metrics/?{YEAR}",
        "metrics page, one service, 30 days": f"/history/metrics/?service=svc-3&{PERIOD}",
        "metrics page, one environment, 30 days": f"/history/metrics/?environment=env-5&{PERIOD}",
        "metrics JSON export, team-wide, 30 days": f"/api/v1/metrics/?{PERIOD}&format=json",
    }
    queries = {}
    with signed_in(user) as client:
        first = time.perf_counter()
        response = client.get(pages["metrics page, team-wide, 30 days"])
        catch_up_ms = (time.perf_counter() - first) * 1000
        assert DeploymentOutcome.objects.count() == deployments
        if connection.vendor == "postgresql":
            # The catch-up wrote the metrics' table after the set-up analyzed the database:
            # autovacuum would analyze it within a minute; the planner must not guess meanwhile.
            analyze_server_database()
        for metric, path in pages.items():
            response = client.get(path)
            # A benchmark of an error page or an empty period would be meaningless.
            assert response.status_code == 200, (metric, response.status_code)
            assert b" 0 deployments finished" not in response.content, metric
            queries[metric] = count_queries(partial(client.get, path))
        trivial_queries = count_queries(partial(client.get, "/bench/trivial/"))
        rows = time_pages(client, pages, repeat=repeat)
    result = {
        "name": "metrics",
        "setup": f"{deployments} deployments, {SERVICES} services, {ENVIRONMENTS} environments, "
        f"{connection.vendor}, {repeat} requests each (interleaved with the trivial view), read "
        "by a user who may view every environment; a shared, loaded machine: compare the ratios",
        "rows": rows,
        "sql_queries": {
            "metric": "SQL queries per metrics page request (each page)",
            "value": max(queries.values()),
            "baseline": "trivial view",
            "baseline_value": trivial_queries,
        },
        "sql_queries_per_page": queries,
        "first_view_catch_up_ms": round(catch_up_ms, 1),
        "populate_s": round(populated, 1),
    }
    write_result("metrics", result)  # metrics-postgresql.json on PostgreSQL
    return result


if __name__ == "__main__":
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=DEPLOYMENTS)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    args = parser.parse_args()
    print(json.dumps(main(args.deployments, args.repeat), indent=2))
