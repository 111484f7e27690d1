"""History page server time with 100,000 deployments, 500 services and 50 environments: the
first page, filtered pages, text searches (a deployment message, a commit message) and a deep
keyset page, against a trivial view in the same run (bench.common).

Runs on its own SQLite database under var/ (BENCH_DATABASE_URL overrides), never on the
database DATABASE_URL names, so that a benchmark cannot touch real data.
"""

import sys
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import use_bench_database

BENCH_DB = use_bench_database("history")

ENVIRONMENTS = 50
SERVICES = 500
USERS = 10
DEPLOYMENTS = 100_000
REPEAT = 200
STATUSES = ["DONE"] * 16 + ["FAILED"] * 3 + ["CANCELED"]


def _populate() -> Any:
    from django.contrib.auth.models import User
    from django.db import connection

    from bench.common import one_a_minute
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
        DeployableVersion(
            service=s,
            git_commit_sha=f"{i:040x}",
            commit_message=f"Commit {i}" + (" reworks the ledger" if i % 97 == 0 else ""),
        )
        for i, s in enumerate(services * 4)
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
    # auto_now_add gave every row the same instant: spread them over ~70 days, one a minute.
    one_a_minute("deployments_deployment", "2026-01-01")
    with connection.cursor() as cursor:
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
    """The plan of the page query: the one reading the rows' names (a search's statement of ids
    and the reader's grants come before it)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    sql = next(q["sql"] for q in queries if 'AS "deployed_by_name"' in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute(
            ("EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN ") + sql
        )
        return [str(r[-1]) for r in cursor.fetchall()]


def main() -> dict[str, Any]:
    from bench.common import count_queries, fresh_site, signed_in, time_pages, write_result

    user = fresh_site(BENCH_DB, _populate)
    pages = {
        "history first page": "/history/",
        "history filtered (service + status)": "/history/?service=svc-3&status=FAILED",
        "history filtered (environment + user)": "/history/?environment=env-5&user=user-1",
        "history text search (rare word)": "/history/?q=hotfix",
        "history text search (commit message)": "/history/?q=ledger",
        "history text search (a word in every message)": "/history/?q=deployment",
        "history deep keyset page (99,000 rows in)": "/history/?"
        + urlencode({"after": _deep_cursor()}),
    }
    plans, queries = {}, {}
    with signed_in(user) as client:
        for metric, path in pages.items():
            # A benchmark of an empty page would be meaningless.
            assert b'href="/deployments/' in client.get(path).content, metric
            plans[metric] = _plan(path, client)
            queries[metric] = count_queries(partial(client.get, path))
        rows = time_pages(client, pages, repeat=REPEAT)
    result = {
        "name": "history",
        "setup": f"{DEPLOYMENTS} deployments, {SERVICES} services, {ENVIRONMENTS} environments, "
        f"{USERS} users, SQLite, {REPEAT} requests each (interleaved with the trivial view), "
        "50 rows a page; a shared, loaded machine: compare the ratios",
        "rows": rows,
        "sql_queries_per_page": queries,
        "query_plans": plans,
    }
    write_result("history", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
