"""Status board server time and SQL count with 500 services x 20 environments (a DONE
deployment in every cell, a FAILED one after it in every tenth), against a trivial view.

Runs on its own SQLite database under var/ (BENCH_DATABASE_URL overrides), never on the
database DATABASE_URL names, so that a benchmark cannot touch real data.
"""

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = ROOT / "var" / "bench-board.sqlite3"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{BENCH_DB}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")

SERVICES = 500
ENVIRONMENTS = 20
REPEAT = int(os.environ.get("BENCH_BOARD_REPEAT", "10"))


def _populate() -> Any:
    from django.contrib.auth.models import User
    from django.utils import timezone

    from deployments.models import DeployableVersion, Deployment, Service
    from environments.models import Cluster, Environment

    user = User.objects.create_user("bench", password="bench-password-0123", is_superuser=True)
    cluster = Cluster.objects.create(name="bench")
    environments = Environment.objects.bulk_create(
        Environment(name=f"env-{i}", cluster=cluster, namespace=f"ns-{i}", availability="staging")
        for i in range(ENVIRONMENTS)
    )
    services = Service.objects.bulk_create(
        Service(name=f"svc-{i:03}", image_repository=f"demo/svc-{i}", deployment_template="x")
        for i in range(SERVICES)
    )
    versions = DeployableVersion.objects.bulk_create(
        DeployableVersion(
            service=s, git_commit_sha=f"{i:040x}", commit_message=f"Change {i}", commit_author="b"
        )
        for i, s in enumerate(services)
    )
    now = timezone.now()
    rows = [
        Deployment(
            service=v.service,
            version=v,
            environment=e,
            deployed_by=user,
            status=status,
            finished_at=now,
        )
        for v in versions
        for j, e in enumerate(environments)
        for status in (["DONE", "FAILED"] if j % 10 == 0 else ["DONE"])
    ]
    Deployment.objects.bulk_create(rows, batch_size=2000)
    return user


def _count_queries(connection: Any, call: Any) -> int:
    """Statements sent to the database during the call (an execute wrapper: the query log is
    reset by every request and bounded)."""
    count = 0

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counting):
        call()
    return count


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
    with override_settings(ROOT_URLCONF="bench.urls", DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        # A benchmark of an error page would be meaningless: check both answer 200 first.
        assert client.get("/status/").status_code == 200
        assert client.get("/bench/trivial/").status_code == 200
        board_sql = _count_queries(connection, lambda: client.get("/status/"))
        trivial_sql = _count_queries(connection, lambda: client.get("/bench/trivial/"))
        board = time_calls(lambda: client.get("/status/"), repeat=REPEAT, warmup=1)
        filtered = time_calls(
            lambda: client.get("/status/?service=svc-007"), repeat=REPEAT, warmup=1
        )
        trivial = time_calls(lambda: client.get("/bench/trivial/"), repeat=REPEAT)
    result = {
        "name": "board",
        "setup": f"{SERVICES} services x {ENVIRONMENTS} environments "
        f"({SERVICES * ENVIRONMENTS} cells), {REPEAT} requests",
        "rows": [
            row("status board server time", board, trivial, "trivial view"),
            row("status board, one service", filtered, trivial, "trivial view"),
        ],
        "sql_queries": {
            "metric": "SQL queries per status board request",
            "value": board_sql,
            "baseline": "trivial view",
            "baseline_value": trivial_sql,
        },
    }
    write_result("board", result)
    return result


if __name__ == "__main__":
    print(main())
