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


# -- the page benches (history, home, board) ---------------------------------------------------


def use_bench_database(name: str) -> Path:
    """Point Django at the bench's own SQLite file under var/ (BENCH_DATABASE_URL overrides),
    never at the database DATABASE_URL names, so that a benchmark cannot touch real data.
    Call before Django is imported."""
    sys.path.insert(0, str(ROOT))
    path = ROOT / "var" / f"bench-{name}.sqlite3"
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{path}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")
    return path


def fresh_site(path: Path, populate: Callable[[], Any]) -> Any:
    """A fresh database (the SQLite file removed), migrated, then populated; populate's result."""
    path.unlink(missing_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return populate()


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
    return [row(metric, measured, trivial, "trivial view") for metric, measured in samples.items()]
