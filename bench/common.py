"""Shared helpers for benchmark scripts: timing, statistics and result files, and the set-up
the page benches share (a fresh SQLite database of their own, migrated and populated, a
signed-in client, and timings against the trivial view taken in the same run)."""

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TRIVIAL = "/bench/trivial/"


def time_calls(call: Callable[[], object], *, repeat: int, warmup: int = 5) -> list[float]:
    """Wall-clock milliseconds of each call, after a warm-up that fills caches."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 3), "p95_ms": round(p95, 3)}


def row(
    metric: str, measured: list[float], baseline: list[float], baseline_name: str
) -> dict[str, Any]:
    ours, base = summary(measured), summary(baseline)
    return {
        "metric": metric,
        **ours,
        "baseline": baseline_name,
        "baseline_median_ms": base["median_ms"],
        "baseline_p95_ms": base["p95_ms"],
        "ratio_median": round(ours["median_ms"] / base["median_ms"], 2),
        "ratio_p95": round(ours["p95_ms"] / base["p95_ms"], 2),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    """bench/results/<name>.json; a page bench run on PostgreSQL writes <name>-postgresql.json,
    with the time its population took and the summary of its queries' plans."""
    if _vendor() == "postgresql":
        name = name if name.endswith("-postgresql") else f"{name}-postgresql"
        result = {
            **result,
            "name": name,
            "setup": str(result.get("setup", "")).replace("SQLite", "PostgreSQL"),
            "database": _server_version(),
            **{key: value for key, value in SETUP.items() if key not in result},
            "query_plans_postgresql": PLANS,
        }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


# -- the deploy benches (deploy, scale, soak) ---------------------------------------------------


def kubesim_environment(
    sim: Any, *, user: str, environment: str, namespace: str, rollout_timeout: int
) -> tuple[Any, Any]:
    """A superuser and an environment on the running kubesim `sim` (its token stored encrypted,
    as Apollo stores any cluster's)."""
    from django.contrib.auth.models import User

    from environments.models import Cluster, Environment

    superuser = User.objects.create_superuser(user, password=f"{user}-password-0123")
    cluster = Cluster(
        name="kubesim",
        connection=Cluster.Connection.TOKEN,
        api_url=sim.url,
        ca_certificate=sim.ca_cert_pem,
    )
    cluster.set_token(sim.token)
    cluster.save()
    created = Environment.objects.create(
        name=environment,
        cluster=cluster,
        namespace=namespace,
        availability="staging",
        rollout_timeout_seconds=rollout_timeout,
    )
    return superuser, created


# -- the page benches (history, home, board, metrics) -----------------------------------------
#
# Each runs on a database of its own: by default an SQLite file under var/, or, with
# BENCH_DATABASE_URL (bench/run.py --postgres URL, `make bench-pg`), a PostgreSQL database that
# the bench creates, fills and drops. Its results then go to <name>-postgresql.json, each row
# named "... (PostgreSQL)" and measured against the trivial view on the same database.

PG_SUFFIX = " (PostgreSQL)"
PLANS_DIR = ROOT / "var" / "bench-plans"


def use_bench_database(name: str) -> Path:
    """Point Django at the bench's own SQLite file under var/ (BENCH_DATABASE_URL overrides),
    never at the database DATABASE_URL names, so that a benchmark cannot touch real data.
    Call before Django is imported."""
    sys.path.insert(0, str(ROOT))
    path = ROOT / "var" / f"bench-{name}.sqlite3"
    bench_url = os.environ.get("BENCH_DATABASE_URL")
    if bench_url:
        _refuse_a_real_database(bench_url, os.environ.get("DATABASE_URL"))
    os.environ["DATABASE_URL"] = bench_url or f"sqlite:///{path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")
    return path


def remove_sqlite_database(path: Path) -> None:
    """The bench's SQLite file with its WAL and shared-memory files: a stale WAL beside a new
    database file of the same name is replayed into it (a run stopped before its last
    connection checkpointed leaves one)."""
    for leftover in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)


def _refuse_a_real_database(bench_url: str, real_url: str | None) -> None:
    """The bench drops and recreates a server database: only one whose name says it is a
    bench's, and never the one DATABASE_URL names."""
    if bench_url.startswith("sqlite"):
        return
    name = _database_name(bench_url)
    if "bench" not in name or (real_url and _database_name(real_url) == name):
        sys.exit(
            f"BENCH_DATABASE_URL names the database {name!r}: the bench drops and recreates its "
            "database, so it must be a bench's own (its name containing 'bench') and not the "
            "one DATABASE_URL names"
        )


def _database_name(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path.lstrip("/")


def fresh_site(path: Path, populate: Callable[[], Any]) -> Any:
    """A fresh database (the SQLite file removed; a PostgreSQL database dropped, created again
    and dropped when the bench ends), migrated, then populated; populate's result."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "sqlite":
        remove_sqlite_database(path)
    else:
        recreate_server_database()
    call_command("migrate", verbosity=0, interactive=False)
    started = time.perf_counter()
    result = populate()
    if connection.vendor == "postgresql":
        analyze_server_database(full=True)
    SETUP["populate_s"] = round(time.perf_counter() - started, 1)
    return result


def analyze_server_database(*, full: bool = False) -> None:
    """PostgreSQL: the tables as a real installation has them. Statistics, the visibility map
    and the GIN indexes' pending lists as autovacuum leaves them (a table never analyzed would
    measure the planner guessing); with `full`, the tables rewritten compact, as rows that were
    only ever inserted leave them (a bench that rewrote every row, e.g. to spread created_at,
    would otherwise read twice the pages through bloated indexes), then vacuumed once more:
    VACUUM FULL leaves the visibility map empty (PostgreSQL 15: relallvisible 0 of 834 pages
    after it, 834 after a plain VACUUM), and until autovacuum came by (within a minute or
    not) the index-only scans of a page visited the table's pages instead (a commit word's
    1,050 deployments: 1,050 heap pages)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if full:
            cursor.execute("VACUUM (FULL, ANALYZE)")
        cursor.execute("VACUUM ANALYZE")


def recreate_server_database() -> None:
    """The bench's PostgreSQL database, dropped and created again (dropped at exit)."""
    import atexit

    from django.db import connection

    name = connection.settings_dict["NAME"]
    with connection._nodb_cursor() as cursor:  # the server's maintenance database
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    atexit.register(_drop_server_database)


def _drop_server_database() -> None:
    from django.db import connection, connections

    connections.close_all()
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{connection.settings_dict["NAME"]}" WITH (FORCE)')


SETUP: dict[str, Any] = {}  # what fresh_site measured, added to the result by write_result


def one_a_minute(table: str, start: str) -> None:
    """Spread the rows' created_at (auto_now_add gave them all the same instant) one a minute
    from `start` in id order. `table` is a constant of the caller, never input."""
    from django.db import connection

    if connection.vendor == "sqlite":
        sql = (
            f"UPDATE {table} SET created_at = "  # noqa: S608
            f"strftime('%Y-%m-%d %H:%M:%f', '{start}', '+' || id || ' minutes')"
        )
    else:
        sql = (
            f"UPDATE {table} SET created_at = "  # noqa: S608
            f"timestamptz '{start} 00:00:00+00' + id * interval '1 minute'"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql)


@contextmanager
def signed_in(user: Any) -> Iterator[Any]:
    """A test client signed in as the user, on Apollo's URLs plus the trivial view."""
    from django.test import Client
    from django.test.utils import override_settings

    client = Client()
    client.force_login(user)
    with override_settings(ROOT_URLCONF="bench.urls", DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        # A benchmark of an error page would be meaningless.
        assert client.get(TRIVIAL).status_code == 200
        yield client


def count_queries(call: Callable[[], object]) -> int:
    """Statements sent to the database during the call (an execute wrapper: the query log is
    reset by every request and bounded)."""
    from django.db import connection

    count = 0

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counting):
        call()
    return count


def time_pages(
    client: Any, pages: dict[str, str], *, repeat: int, warmup: int = 3
) -> list[dict[str, Any]]:
    """Each page's server time against the trivial view, as rows for write_result.

    The requests are interleaved (trivial, page 1, page 2, ..., trivial, page 1, ...) so that
    the load of a shared machine falls on the baseline and the pages alike: the ratios are the
    figures to compare between runs, the milliseconds depend on the machine's load."""
    if _vendor() == "postgresql":
        explain_pages(client, pages)
    paths = {"trivial view": TRIVIAL, **pages}
    for metric, path in paths.items():
        response = client.get(path)
        assert response.status_code == 200, (metric, response.status_code)
        for _ in range(warmup):
            client.get(path)
    samples: dict[str, list[float]] = {metric: [] for metric in paths}
    for _ in range(repeat):
        for metric, path in paths.items():
            start = time.perf_counter()
            client.get(path)
            samples[metric].append((time.perf_counter() - start) * 1000)
    trivial = samples.pop("trivial view")
    suffix = PG_SUFFIX if _vendor() == "postgresql" else ""
    return [
        row(metric + suffix, measured, trivial, "trivial view" + suffix)
        for metric, measured in samples.items()
    ]


# -- the plans of the page benches' queries on PostgreSQL --------------------------------------

PLANS: dict[str, list[dict[str, Any]]] = {}  # page -> its queries' plan summaries


def _vendor() -> str | None:
    """The bench database's vendor, once Django is set up (None before)."""
    if "django.db" not in sys.modules:
        return None
    from django.conf import settings

    if not settings.configured:
        return None
    from django.db import connection

    return str(connection.vendor)


def _server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return f"PostgreSQL {cursor.fetchone()[0]}"


def explain_pages(client: Any, pages: dict[str, str]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) every read a page sends (PostgreSQL): a summary per query in
    PLANS (each plan node with its index, rows and time), the whole plans in var/bench-plans/.
    Run after a warm-up request, so that the plans read warm caches as the timed requests do."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    PLANS_DIR.mkdir(parents=True, exist_ok=True)
    for metric, path in pages.items():
        client.get(path)
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        summaries, texts = [], []
        for query in queries.captured_queries:
            sql = query["sql"]
            if (
                not sql.lstrip().upper().startswith(("SELECT", "(SELECT"))
            ):  # ANALYZE runs it: reads only
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
                plan = _json_plan(cursor.fetchone()[0])
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                texts.append(sql + "\n" + "\n".join(r[0] for r in cursor.fetchall()))
            summaries.append(
                {
                    "sql": sql[:200],
                    "execution_ms": plan["Execution Time"],
                    "scans": [line for line in _nodes(plan["Plan"]) if " on " in line],
                }
            )
        PLANS[metric] = summaries
        slug = "".join(c if c.isalnum() else "-" for c in metric).strip("-")
        (PLANS_DIR / f"{slug}.txt").write_text("\n\n".join(texts) + "\n")


def _json_plan(raw: Any) -> dict[str, Any]:
    plans = json.loads(raw) if isinstance(raw, str) else raw
    return dict(plans[0])


def _nodes(node: dict[str, Any], depth: int = 0) -> Iterator[str]:
    """One line per plan node: what it is, on which table through which index, rows, time
    (the JSON keeps the scans: which table is read through which index, and how much)."""
    what = node["Node Type"]
    if "Relation Name" in node:
        what += f" on {node['Relation Name']}"
    if "Index Name" in node:  # a bitmap index scan names no table
        what += f" {'using' if 'Relation Name' in node else 'on'} {node['Index Name']}"
    buffers = node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
    yield (
        f"{'  ' * depth}{what} (rows={node.get('Actual Rows')} loops={node.get('Actual Loops')} "
        f"ms={node.get('Actual Total Time')} buffers={buffers})"
    )
    for child in node.get("Plans", []):
        yield from _nodes(child, depth + 1)


def rollout_complete_json(obj: dict[str, Any]) -> bool:
    """A Deployment, as the API sends it (JSON), whose rollout is complete, as the bare
    client's watch judges it (kubectl rollout status's counts). The benches' watches read the
    events as JSON (Watch.stream(deserialize=False)), as kubectl does: deserialised into client
    objects, a watch of 100 rollouts cost the bench's own process, which also runs kubesim, a
    large share of a CPU."""
    status, meta = obj.get("status") or {}, obj.get("metadata") or {}
    desired = (obj.get("spec") or {}).get("replicas") or 0
    updated = status.get("updatedReplicas") or 0
    return bool(
        (status.get("observedGeneration") or 0) >= (meta.get("generation") or 0)
        and updated >= desired
        and (status.get("replicas") or 0) == updated
        and (status.get("availableReplicas") or 0) >= desired
        and (status.get("readyReplicas") or 0) >= desired
    )
