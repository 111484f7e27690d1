"""Metrics page server time with 100,000 deployments: team-wide, one service, one environment,
and the JSON export, against a trivial view in the same run; SQL statements per request.

Runs on its own SQLite database under var/ (BENCH_DATABASE_URL overrides), never on the
database DATABASE_URL names, so that a benchmark cannot touch real data.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = ROOT / "var" / "bench-metrics.sqlite3"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{BENCH_DB}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")

ENVIRONMENTS = 50
SERVICES = 20
DEPLOYMENTS = 100_000
REPEAT = 20
STATUSES = ["DONE"] * 16 + ["FAILED"] * 3 + ["CANCELED"]
PERIOD = "start=2026-01-20&end=2026-02-18"  # 30 days in the middle of the ~70 the rows span


def _populate() -> Any:
    from django.contrib.auth.models import User
    from django.db import connection

    from deployments.models import DeployableVersion, Deployment, Service
    from environments.models import Cluster, Environment

    user = User.objects.create_superuser("reader", password="bench-pw-0123")
    cluster = Cluster.objects.create(name="bench")
    environments = Environment.objects.bulk_create(
        Environment(name=f"env-{i}", cluster=cluster, namespace=f"ns-{i}", availability="staging")
        for i in range(ENVIRONMENTS)
    )
    services = Service.objects.bulk_create(
        Service(name=f"svc-{i}", image_repository=f"demo/svc-{i}", deployment_template="x")
        for i in range(SERVICES)
    )
    versions = DeployableVersion.objects.bulk_create(
        DeployableVersion(service=s, git_commit_sha=f"{i:040x}")
        for i, s in enumerate(services * 50)
    )
    n = len(versions)
    Deployment.objects.bulk_create(
        (
            Deployment(
                service=versions[i % n].service,
                version=versions[i % n],
                # every tenth one goes back to the version before (a revert when it follows)
                source_version=versions[(i - SERVICES) % n] if i >= SERVICES else None,
                environment=environments[(i * 7) % ENVIRONMENTS],
                deployed_by=user,
                status=STATUSES[(i // 7) % len(STATUSES)],
            )
            for i in range(DEPLOYMENTS)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        # One a minute over ~70 days; each took 3 minutes; commits an hour to a day earlier.
        cursor.execute(
            "UPDATE deployments_deployment SET "
            "created_at = strftime('%Y-%m-%d %H:%M:%f', '2026-01-01', '+' || id || ' minutes'), "
            "started_at = strftime('%Y-%m-%d %H:%M:%f', '2026-01-01', '+' || id || ' minutes'), "
            "finished_at = strftime('%Y-%m-%d %H:%M:%f', '2026-01-01', "
            "'+' || (id + 3) || ' minutes')"
        )
        cursor.execute(
            "UPDATE deployments_deployableversion SET committed_at = "
            "strftime('%Y-%m-%d %H:%M:%f', '2026-01-01', '+' || (id * 97 % 1440) || ' minutes')"
        )
        cursor.execute("ANALYZE")
    return user


def _count_queries(connection: Any, call: Any) -> int:
    count = 0

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counting):
        call()
    return count


def _getter(client: Any, path: str) -> Callable[[], object]:
    return lambda: client.get(path)


def main() -> dict[str, Any]:
    BENCH_DB.unlink(missing_ok=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from bench.common import row, time_calls, write_result

    call_command("migrate", verbosity=0, interactive=False)
    user = _populate()
    client = Client()
    client.force_login(user)
    pages = {
        "metrics page, team-wide, 30 days": f"/history/metrics/?{PERIOD}",
        "metrics page, one service": f"/history/metrics/?service=svc-3&{PERIOD}",
        "metrics page, one environment": f"/history/metrics/?environment=env-5&{PERIOD}",
        "metrics JSON export, team-wide": f"/api/v1/metrics/?{PERIOD}&format=json",
    }
    rows = []
    with override_settings(ROOT_URLCONF="bench.urls", DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        assert client.get("/bench/trivial/").status_code == 200
        for metric, path in pages.items():
            response = client.get(path)
            # A benchmark of an error page or an empty period would be meaningless.
            assert response.status_code == 200, (metric, response.status_code)
            assert b" 0 deployments finished" not in response.content, metric
        page_sql = _count_queries(
            connection, lambda: client.get(pages["metrics page, one service"])
        )
        trivial_sql = _count_queries(connection, lambda: client.get("/bench/trivial/"))
        trivial = time_calls(lambda: client.get("/bench/trivial/"), repeat=REPEAT)
        for metric, path in pages.items():
            measured = time_calls(_getter(client, path), repeat=REPEAT, warmup=1)
            rows.append(row(metric, measured, trivial, "trivial view"))
    result = {
        "name": "metrics",
        "setup": f"{DEPLOYMENTS} deployments, {SERVICES} services, {ENVIRONMENTS} environments, "
        f"SQLite, {REPEAT} requests each, a 30-day period",
        "rows": rows,
        "sql_queries": {
            "metric": "SQL queries per metrics page request",
            "value": page_sql,
            "baseline": "trivial view",
            "baseline_value": trivial_sql,
        },
    }
    write_result("metrics", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
