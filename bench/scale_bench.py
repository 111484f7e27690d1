"""Scale: one worker process follows many concurrent rollouts (issue #16).

    bench/scale_bench.py                  # 20 rollouts (writes bench/results/scale.json)
    bench/scale_bench.py --rollouts 100   # the issue's figure (scale-100.json)

kubesim embedded, pods that take STARTUP seconds to start; one `manage.py rundeployments`
process (the production worker, `--parallel` as large as the number of rollouts); one
service per rollout, all requested at once through `POST /api/v1/deployments/`. For each
rollout: the moment kubesim reports the Deployment complete (seen by a watch of the bench's
own, the bare client's view) and the moment Apollo recorded DONE (finished_at); the figure is
the difference. finished_at is stamped before its UPDATE waits for the database (on SQLite,
for the one writer's lock: up to a second at 100 rollouts), so the figure is taken from when
the DONE became visible to a reader (committed), polled every POLL seconds by the bench; the
finished_at figure is kept beside it. The worker's CPU seconds over the run and its peak RSS
(VmHWM) come from /proc, beside its idle RSS measured in the same run.

Its own SQLite database under var/ (BENCH_DATABASE_URL overrides: a PostgreSQL database whose
name contains "bench", dropped and created again before each run and dropped after it; the
results go to scale-100-postgresql.json. A following rollout holds no connection there, and at
100 rollouts the bench and the worker held at most 40 of the server's connections, while
rollouts were being claimed and applied).
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import use_bench_database  # noqa: E402 (after the path)

BENCH_DB = use_bench_database("scale")
os.environ.pop("REDIS_URL", None)

NAMESPACE = "scale"
STARTUP = 3.0  # seconds a pod takes to start
DEFAULT_ROLLOUTS = 20
POLL = 0.01  # how often the bench looks for newly committed verdicts
# How the worker is started (bench/scale_trace.py starts it through itself, its steps stamped).
WORKER = [sys.executable, "manage.py"]


def _setup(sim: Any, count: int) -> tuple[Any, Any, list[Any]]:
    from bench.common import kubesim_environment
    from deployments.models import DeployableVersion, Service
    from tests.factories import DEPLOYMENT_TEMPLATE

    user, environment = kubesim_environment(
        sim, user="bench", environment="scale", namespace=NAMESPACE, rollout_timeout=300
    )
    versions = []
    for index in range(count):
        service = Service.objects.create(
            name=f"svc-{index:03d}",
            image_repository=f"registry.example.com/svc-{index:03d}",
            deployment_template=DEPLOYMENT_TEMPLATE,
            default_variables={"replicas": 2},
        )
        versions.append(
            DeployableVersion.objects.create(service=service, git_commit_sha=f"{index:040x}")
        )
    return user, environment, versions


class Completions(threading.Thread):
    """The bare client's view: when each Deployment of the namespace first is complete."""

    def __init__(self, sim: Any, expected: int) -> None:
        super().__init__(daemon=True)
        self.sim, self.expected = sim, expected
        self.at: dict[str, float] = {}
        self.ready = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        from kubernetes import client, watch

        from bench.common import rollout_complete_json

        api = self.sim.api_client()
        apps = client.AppsV1Api(api)
        listed = apps.list_namespaced_deployment(NAMESPACE)
        self.ready.set()
        # The events as JSON, as kubectl rollout status (a Go client) reads them: deserialised
        # into client objects, they cost this process (kubesim's too) CPU the rollouts need.
        stream = watch.Watch().stream(
            apps.list_namespaced_deployment,
            NAMESPACE,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=600,
            deserialize=False,
        )
        for event in stream:
            obj = event["object"]
            name = obj["metadata"]["name"]
            if name not in self.at and rollout_complete_json(obj):
                self.at[name] = time.time()
                if len(self.at) >= self.expected:
                    break
        self.done.set()
        api.close()


class Verdicts(threading.Thread):
    """When each verdict became visible to a reader (committed), polled every POLL seconds
    from before the first request (the first rollouts end while later ones are requested)."""

    def __init__(self, expected: int) -> None:
        super().__init__(daemon=True)
        self.expected = expected
        self.at: dict[int, float] = {}

    def run(self) -> None:
        from django.db import connection

        from deployments.models import Deployment
        from deployments.status import Status

        ended = Deployment.objects.exclude(status__in=Status.in_progress())
        try:
            while len(self.at) < self.expected:
                time.sleep(POLL)
                found = list(ended.exclude(pk__in=list(self.at)).values_list("pk", flat=True))
                now = time.time()
                for pk in found:
                    self.at[pk] = now
        finally:
            connection.close()


def _proc(pid: int) -> tuple[float, float, float]:
    """CPU seconds (user + system), RSS and peak RSS (MB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )

    def mb(key: str) -> float:
        return round(int(status[key].split()[0]) / 1024, 1)

    return cpu, mb("VmRSS"), mb("VmHWM")


def _start_worker(parallel: int, log: Path) -> subprocess.Popen[bytes]:
    command = [*WORKER, "rundeployments", "--parallel", str(parallel)]
    from django.conf import settings

    # As in production, DEBUG off: with it on (the settings' default for development) Django
    # keeps every statement with its values in the query log. The bench's key, so that the
    # worker decrypts the cluster's token the bench stored.
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "APOLLO_WORKER_METRICS_PORT": "0",
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
    }
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait(check: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{what}: not within {timeout} s; worker output:\n{tail}")
        time.sleep(0.1)


def _request_all(key: str, versions: list[Any]) -> dict[int, str]:
    from django.test import Client

    client = Client(headers={"Authorization": f"Token {key}", "Host": "127.0.0.1"})
    posted = {}
    for version in versions:
        body = {
            "service": version.service.name,
            "environment": "scale",
            "git_commit_sha": version.git_commit_sha,
        }
        response = client.post("/api/v1/deployments/", body, content_type="application/json")
        assert response.status_code == 201, response.content
        posted[response.json()["id"]] = version.service.name
    return posted


def main(rollouts: int = DEFAULT_ROLLOUTS) -> dict[str, Any]:
    from bench.common import recreate_server_database, remove_sqlite_database

    remove_sqlite_database(BENCH_DB)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        settings.DATABASES["default"].setdefault("OPTIONS", {}).update(
            timeout=20, transaction_mode="IMMEDIATE"
        )
    else:
        recreate_server_database()  # (empty: a run before left its rows)
    from bench.common import row, summary, write_result
    from deployments.models import Deployment, WorkerHeartbeat
    from deployments.status import Status
    from kubesim.testing import run_kubesim
    from permissions.tokens import issue_token

    call_command("migrate", verbosity=0, interactive=False)
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_kubesim(
            tmp_dir=Path(tmp), startup_delay=STARTUP, namespaces=("default", NAMESPACE)
        ) as sim,
    ):
        user, _, versions = _setup(sim, rollouts)
        _, key = issue_token(actor=None, user=user, name="bench")
        log = Path(tmp) / "worker.log"
        worker = _start_worker(rollouts, log)
        try:
            _wait(WorkerHeartbeat.objects.exists, 60, "the worker's first heartbeat", log)
            time.sleep(1)  # (its start-up settled: the idle figures)
            cpu_idle, rss_idle, _ = _proc(worker.pid)
            completions = Completions(sim, rollouts)
            completions.start()
            completions.ready.wait(30)
            verdicts = Verdicts(rollouts)
            verdicts.start()
            started = time.time()
            posted = _request_all(key, versions)
            _wait(lambda: len(verdicts.at) == rollouts, 120 + STARTUP, "every verdict", log)
            cpu_end, _, rss_peak = _proc(worker.pid)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
        completions.done.wait(10)
        rows_db = Deployment.objects.filter(pk__in=posted).values_list(
            "pk", "status", "finished_at"
        )
    lags: list[float] = []  # complete → visible
    stamped: list[float] = []  # complete → finished_at
    rollout_times: list[float] = []
    statuses: dict[str, int] = {}
    for pk, status, finished_at in rows_db:
        statuses[status] = statuses.get(status, 0) + 1
        complete = completions.at.get(posted[pk])
        if status == Status.DONE and complete is not None and finished_at is not None:
            lags.append((verdicts.at[pk] - complete) * 1000)
            stamped.append((finished_at.timestamp() - complete) * 1000)
            rollout_times.append((complete - started) * 1000)
    lag = summary(lags) if lags else {}
    # Where the slowest verdicts fall in the run: (ms after the POSTs began that the rollout
    # completed, its lag in ms), the five largest lags.
    slowest = sorted(zip(rollout_times, lags, strict=True), key=lambda pair: -pair[1])[:5]
    result = {
        "name": "scale" if rollouts == DEFAULT_ROLLOUTS else f"scale-{rollouts}",
        "setup": f"{rollouts} concurrent rollouts (2 replicas, pods starting in {STARTUP} s) "
        f"followed by one rundeployments process (--parallel {rollouts}), kubesim embedded, "
        f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
        "rows": [
            row(
                f"rollout complete (kubesim, bare watch) → DONE visible (polled every {POLL} s)",
                lags,
                rollout_times,
                "the rollouts themselves: POSTs sent → complete",
            ),
            row(
                "rollout complete (kubesim, bare watch) → DONE's finished_at",
                stamped,
                rollout_times,
                "the rollouts themselves: POSTs sent → complete",
            ),
        ]
        if lags
        else [],
        "statuses": statuses,
        "done_lag_ms": {**lag, "max_ms": round(max(lags), 1) if lags else None},
        "finished_at_lag_ms": {
            **(summary(stamped) if stamped else {}),
            "max_ms": round(max(stamped), 1) if stamped else None,
        },
        "slowest": [{"complete_at_ms": round(at), "lag_ms": round(ms)} for at, ms in slowest],
        "target": "every DONE within 100 ms of the rollout completing",
        "worker": {
            "cpu_seconds": round(cpu_end - cpu_idle, 2),
            "rss_idle_mb": rss_idle,
            "rss_peak_mb": rss_peak,
        },
        "memory": {
            "metric": f"worker peak RSS following {rollouts} rollouts",
            "value_mb": rss_peak,
            "per_tail_kb": "",
            "baseline": "the same worker idle",
            "baseline_value_mb": rss_idle,
        },
    }
    write_result(str(result["name"]), result)
    return result


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="One worker following many rollouts")
    parser.add_argument("--rollouts", type=int, default=DEFAULT_ROLLOUTS)
    print(json.dumps(main(parser.parse_args().rollouts), indent=2))
