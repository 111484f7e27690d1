"""Home page server time with 100,000 deployments, 500 services and 50 environments, against a
trivial view in the same run (bench.common), with its SQL count.

Runs on its own SQLite database under var/ (BENCH_DATABASE_URL overrides), never on the
database DATABASE_URL names, so that a benchmark cannot touch real data.
"""

import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import use_bench_database

BENCH_DB = use_bench_database("home")

ENVIRONMENTS = 50
SERVICES = 500
DEPLOYMENTS = 100_000
REPEAT = 200
# The site's layout around no content (bench/urls.py): the fixed cost of a signed-in page.
EMPTY = "/bench/empty/"


def _populate() -> tuple[Any, Any]:
    from django.contrib.auth.models import User

    from deployments.models import DeployableVersion, Deployment, Service
    from environments.models import Cluster, Environment
    from permissions.services import grant
    from permissions.verbs import Verb

    admin = User.objects.create_user("bench", password="bench-password-0123", is_superuser=True)
    reader = User.objects.create_user("reader", password="bench-password-0123")
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
        DeployableVersion(service=s, git_commit_sha=f"{i:040x}") for i, s in enumerate(services * 2)
    )
    Deployment.objects.bulk_create(
        (
            Deployment(
                service=versions[i % len(versions)].service,
                version=versions[i % len(versions)],
                environment=environments[(i * 7) % ENVIRONMENTS],
                deployed_by=admin,
                status="DONE",
                message=f"deployment {i}",
            )
            for i in range(DEPLOYMENTS)
        ),
        batch_size=2000,
    )
    # An ordinary reader who may view every (staging) environment: the visibility filter is
    # part of what is measured.
    grant(actor=None, verbs=[Verb.VIEW], user=reader, availability="staging", note="bench")
    return admin, reader


def main() -> dict[str, Any]:
    from bench.common import count_queries, fresh_site, signed_in, time_pages, write_result

    admin, reader = fresh_site(BENCH_DB, _populate)
    rows, queries = [], {}
    for who, user in (("superuser", admin), ("reader with a grant", reader)):
        with signed_in(user) as client:
            queries[who] = count_queries(partial(client.get, "/"))
            queries[f"empty page ({who})"] = count_queries(partial(client.get, EMPTY))
            pages = {f"home page ({who})": "/", f"signed-in empty page ({who})": EMPTY}
            for r in time_pages(client, pages, repeat=REPEAT):
                rows.append(r)
    result = {
        "name": "home",
        "setup": f"{ENVIRONMENTS} environments, {SERVICES} services, {DEPLOYMENTS} deployments, "
        f"SQLite, {REPEAT} requests each (interleaved with the trivial view); a shared, loaded "
        "machine: compare the ratios",
        "rows": rows,
        "sql_queries_per_page": queries,
    }
    write_result("home", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
