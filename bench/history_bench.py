"""History page server time with 100,000 deployments: the first page, a filtered page, a text
search and a deep keyset page, against a trivial view in the same run.

Runs on its own SQLite database under var/ (BENCH_DATABASE_URL overrides), never on the
database DATABASE_URL names, so that a benchmark cannot touch real data.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = ROOT / "var" / "bench-history.sqlite3"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{BENCH_DB}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")

ENVIRONMENTS = 50
SERVICES = 20
USERS = 10
DEPLOYMENTS = 100_000
REPEAT = 200
STATUSES = ["DONE"] * 16 + ["FAILED"] * 3 + ["CANCELED"]


def _populate() -> Any:
    from django.contrib.auth.models import User
    from django.db import connection

    from deployments.models import DeployableVersion, Deployment, Service
    from environments.models import Cluster, Environment
    from permissions.services import grant
    from permissions.verbs import Verb

    users = [User.objects.create_user(f"user-{i}", password="bench-pw-0123") for i in range(USERS)]
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
    Deployment.objects.bulk_create(
        (
            Deployment(
                service=versions[i % len(versions)].service,
                version=versions[i % len(versions)],
                environment=environments[(i * 7) % ENVIRONMENTS],
                deployed_by=users[(i // 3) % USERS],
                status=STATUSES[(i // 7) % len(STATUSES)],
                message=f"deployment {i}" + (" hotfix for the basket" if i % 500 == 0 else ""),
            )
            for i in range(DEPLOYMENTS)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        # auto_now_add gave every row the same instant: spread them over ~70 days, one a minute.
        cursor.execute(
            "UPDATE deployments_deployment SET created_at = "
            "strftime('%Y-%m-%d %H:%M:%f', '2026-01-01', '+' || id || ' minutes')"
        )
        cursor.execute("ANALYZE")
    # The reader is an ordinary user who may view every (staging) environment: the page shows
    # only what its reader may view, and the visibility check is part of what is measured.
    grant(actor=None, verbs=[Verb.VIEW], user=users[0], availability="staging", note="bench")
    return users[0]


def _deep_cursor() -> str:
    from deployments.models import Deployment
    from deployments.selectors import format_cursor

    row = Deployment.objects.order_by("-created_at", "-id")[DEPLOYMENTS - 1000]
    return format_cursor(row)


def _plan(path: str, client: Any) -> list[str]:
    """The SQLite plan of the page query (the one reading deployments_deployment)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    sql = next(q["sql"] for q in queries if 'FROM "deployments_deployment"' in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return [str(r[-1]) for r in cursor.fetchall()]


def _getter(client: Any, path: str) -> Callable[[], object]:
    return lambda: client.get(path)


def main() -> dict[str, Any]:
    BENCH_DB.unlink(missing_ok=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings

    from bench.common import row, time_calls, write_result

    call_command("migrate", verbosity=0, interactive=False)
    user = _populate()
    client = Client()
    client.force_login(user)
    pages = {
        "history first page": "/history/",
        "history filtered (service + status)": "/history/?service=svc-3&status=FAILED",
        "history filtered (environment + user)": "/history/?environment=env-5&user=user-1",
        "history text search (rare word)": "/history/?q=hotfix",
        "history deep keyset page (99,000 rows in)": "/history/?"
        + urlencode({"after": _deep_cursor()}),
    }
    rows, plans = [], {}
    with override_settings(ROOT_URLCONF="bench.urls", DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        assert client.get("/bench/trivial/").status_code == 200
        for metric, path in pages.items():
            response = client.get(path)
            # A benchmark of an error page or an empty page would be meaningless.
            assert response.status_code == 200, (metric, response.status_code)
            assert b'href="/deployments/' in response.content, metric
            plans[metric] = _plan(path, client)
        trivial = time_calls(lambda: client.get("/bench/trivial/"), repeat=REPEAT)
        for metric, path in pages.items():
            measured = time_calls(_getter(client, path), repeat=REPEAT)
            rows.append(row(metric, measured, trivial, "trivial view"))
    result = {
        "name": "history",
        "setup": f"{DEPLOYMENTS} deployments, {SERVICES} services, {ENVIRONMENTS} environments, "
        f"{USERS} users, SQLite, {REPEAT} requests each, 50 rows a page",
        "rows": rows,
        "query_plans": plans,
    }
    write_result("history", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
