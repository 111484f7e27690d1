"""Status board and Deploy page server time and SQL count with 1,000 services x 20
environments (a DONE deployment in every cell, a FAILED one after it in every tenth), against
a trivial view in the same run (bench.common); as a superuser, and as a developer (a user
allowed to view and deploy in every "staging" environment by a grant, as most users are).

Runs on its own SQLite database under var/ (BENCH_DATABASE_URL overrides), never on the
database DATABASE_URL names, so that a benchmark cannot touch real data.
"""

import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import use_bench_database

BENCH_DB = use_bench_database("board")

SERVICES = int(os.environ.get("BENCH_BOARD_SERVICES", "1000"))
ENVIRONMENTS = 20
REPEAT = int(os.environ.get("BENCH_BOARD_REPEAT", "100"))
DEPLOY_CHOSEN = "deploy page, a service and two environments chosen"


def _populate() -> Any:
    from django.contrib.auth.models import User
    from django.utils import timezone

    from deployments.models import DeployableVersion, Deployment, Service
    from environments.models import Cluster, Environment
    from permissions.services import grant
    from permissions.verbs import Verb

    user = User.objects.create_user("bench", password="bench-password-0123", is_superuser=True)
    developer = User.objects.create_user("bench-dev", password="bench-password-0123")
    grant(actor=None, user=developer, verbs=[Verb.VIEW, Verb.DEPLOY], availability="staging")
    cluster = Cluster.objects.create(name="bench")
    environments = Environment.objects.bulk_create(
        Environment(name=f"env-{i}", cluster=cluster, namespace=f"ns-{i}", availability="staging")
        for i in range(ENVIRONMENTS)
    )
    services = Service.objects.bulk_create(
        Service(name=f"svc-{i:04}", image_repository=f"demo/svc-{i}", deployment_template="x")
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


def main() -> dict[str, Any]:
    from bench.common import count_queries, fresh_site, signed_in, time_pages, write_result

    user = fresh_site(BENCH_DB, _populate)
    from django.contrib.auth.models import User

    from deployments.models import Service
    from environments.models import Environment

    # The Deploy page takes its choices as ids (?services=&environments=), as its form posts them.
    chosen = Service.objects.get(name="svc-0007").pk
    env_1, env_2 = (Environment.objects.get(name=name).pk for name in ("env-1", "env-2"))
    pages = {
        "status board (first page of services)": "/status/",
        "status board, one service": "/status/?service=svc-0007",
        "status board, one environment": "/status/?environment=env-3",
        "deploy page": "/deploy/",
        DEPLOY_CHOSEN: f"/deploy/?services={chosen}&environments={env_1}&environments={env_2}",
    }
    developer_pages = {
        f"{metric}, a developer with a grant": path
        for metric, path in pages.items()
        if metric in ("status board (first page of services)", DEPLOY_CHOSEN)
    }
    queries, rows = {}, []
    for who, measured in ((user, pages), (User.objects.get(username="bench-dev"), developer_pages)):
        with signed_in(who) as client:
            queries.update(
                {
                    metric: count_queries(partial(client.get, path))
                    for metric, path in {**measured, "trivial view": "/bench/trivial/"}.items()
                }
            )
            rows += time_pages(client, measured, repeat=REPEAT)
    result = {
        "name": "board",
        "setup": f"{SERVICES} services x {ENVIRONMENTS} environments "
        f"({SERVICES * ENVIRONMENTS} cells), SQLite, {REPEAT} requests each (interleaved with "
        "the trivial view), as a superuser and as a developer (view and deploy granted on "
        "availability 'staging', every environment's); a shared, loaded machine: compare the "
        "ratios",
        "rows": rows,
        "sql_queries_per_page": queries,
        "sql_queries": {
            "metric": "SQL queries per status board request",
            "value": queries["status board (first page of services)"],
            "baseline": "trivial view",
            "baseline_value": queries["trivial view"],
        },
    }
    write_result("board", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
