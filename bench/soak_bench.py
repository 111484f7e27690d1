"""Soak: deployments through random faults, judged on what the cluster really runs.

    bench/soak_bench.py                     # 24 deployments, 2 worker processes (make bench)
    bench/soak_bench.py --deployments 200   # the issue's size (#17)
    createdb -h 127.0.0.1 -U postgres soak  # once
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/soak bench/soak_bench.py
                                            # PostgreSQL: adds terminated backends to the faults
                                            # (and the advisory locks that resume a kill -9)

kubesim runs embedded; the workers are real `manage.py rundeployments` processes on the bench's
own database (SQLite under var/ unless BENCH_DATABASE_URL names one; never DATABASE_URL's).
Deployments are requested in waves over several services, each image with a known fate (ok,
slow, missing image, crash loop). While they run, a fault is injected every 1.5 to 3 s, at
random: API latency, 5xx answers, dropped connections, watches ended, the API server down for
2 to 5 s, a worker killed (-9) or stopped (SIGTERM) and started again, and on PostgreSQL every
backend of the database terminated, and (when Debian's redis-server is installed) the Redis server
of the live pages' channel layer, started by the bench itself, stopped for 2 to 5 s and started
again on the same port (publishing is best effort: a deployment must not notice). Reported:

- stuck: not DONE/FAILED/CANCELED within 180 s of its request;
- false verdicts: DONE for an image that cannot run, FAILED for one that can (the cluster's
  own state is checked for the DONE ones: the Deployment runs that image, all replicas ready);
- double applies: more than one apply of the Deployment sent without a failed attempt between
  (the timeline records every apply sent, before it is sent);
- time to resume after a kill -9: from the kill to another worker holding each deployment the
  killed one held (median and p95).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = ROOT / "var" / "bench-soak.sqlite3"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{BENCH_DB}")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.pop("REDIS_URL", None)  # never the caller's Redis: the bench starts its own
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")

NAMESPACE = "soak"
SERVICES = 6
STUCK_AFTER = 180.0
FATES = [
    ("ok", 0.0),
    ("slow", 1.5),
    ("slow", 3.0),
    ("ok", 0.0),
    ("missing", 0.0),
    ("crashloop", 0.2),
]


class Redis:
    """A redis-server of the bench's own (no persistence), stopped and started on one port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the bench's redis-server did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None


class Workers:
    """`manage.py rundeployments` processes, killed and restarted by the fault injector."""

    def __init__(self, count: int) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()
        for _ in range(count):
            self.processes.append(self._start())

    @staticmethod
    def _start() -> "subprocess.Popen[bytes]":
        env = {**os.environ, "DATABASE_URL": DATABASE_URL, "APOLLO_LOG_FORMAT": "plain"}
        # REDIS_URL (the bench's own server, when it runs one) is in os.environ: inherited.
        return subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rundeployments",
                "--poll-interval",
                "0.1",
                "--grace",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def replace(self, index: int, sig: signal.Signals) -> int:
        with self.lock:
            process = self.processes[index]
            process.send_signal(sig)
            process.wait(timeout=60)
            self.processes[index] = self._start()
            return process.pid

    def stop(self) -> None:
        with self.lock:
            for process in self.processes:
                process.send_signal(signal.SIGTERM)
            for process in self.processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


class Faults(threading.Thread):
    def __init__(
        self, sim: Any, workers: Workers, postgres: bool, seed: int, redis: Redis | None
    ) -> None:
        super().__init__(daemon=True, name="faults")
        self.sim, self.workers, self.postgres, self.redis = sim, workers, postgres, redis
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.counts: dict[str, int] = {}
        self.resumes: list[float] = []

    def run(self) -> None:
        kinds = ["latency", "errors", "drops", "watches", "down", "kill", "sigterm"]
        if self.postgres:
            kinds.append("database")
        if self.redis is not None:
            kinds.append("redis")
        while not self.stop.wait(self.random.uniform(1.5, 3.0)):
            kind = self.random.choice(kinds)
            self.counts[kind] = self.counts.get(kind, 0) + 1
            try:
                self._inject(kind)
            except Exception as exc:  # the injector must outlive its own failures
                print(f"fault {kind} failed: {exc}", flush=True)

    def _inject(self, kind: str) -> None:
        sim = self.sim
        if kind == "latency":
            sim.set_faults(latency_ms=self.random.choice([300, 700, 1500]))
            self.stop.wait(3)
            sim.reset_faults()
        elif kind == "errors":
            sim.set_faults(error_rate=0.2, seed=self.random.randrange(1000))
            self.stop.wait(3)
            sim.reset_faults()
        elif kind == "drops":
            sim.set_faults(drop_rate=0.1, seed=self.random.randrange(1000))
            self.stop.wait(3)
            sim.reset_faults()
        elif kind == "watches":
            sim.end_watches()
        elif kind == "down":
            seconds = self.random.uniform(2, 5)
            sim.down(seconds)
            self.stop.wait(seconds)
        elif kind == "kill":
            self._kill()
        elif kind == "sigterm":
            self.workers.replace(self.random.randrange(len(self.workers.processes)), signal.SIGTERM)
        elif kind == "redis":
            assert self.redis is not None
            self.redis.stop()
            self.stop.wait(self.random.uniform(2, 5))
            self.redis.start()
        elif kind == "database":
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )

    def _kill(self) -> None:
        """kill -9 a worker; time until every deployment it held is held by another."""
        from deployments.models import Deployment
        from deployments.status import Status

        # A worker that holds a deployment (waiting up to 3 s for one), else any.
        index = self.random.randrange(len(self.workers.processes))
        held: list[tuple[int, str]] = []
        deadline = time.monotonic() + 3
        while not held and time.monotonic() < deadline:
            owners = _db(
                lambda: list(
                    Deployment.objects.filter(status__in=Status.in_progress())
                    .exclude(lease_owner="")
                    .values_list("pk", "lease_owner")
                )
            )
            pids = [p.pid for p in self.workers.processes]
            for i, pid in enumerate(pids):
                mine = [(pk, owner) for pk, owner in owners if f":{pid}:" in owner]
                if mine:
                    index, held = i, mine
                    break
            else:
                time.sleep(0.1)
        self.workers.replace(index, signal.SIGKILL)
        killed = time.monotonic()
        for pk, owner in held:
            deadline = killed + 60
            while time.monotonic() < deadline:
                row = _db(
                    lambda pk=pk: (
                        Deployment.objects.filter(pk=pk)
                        .values_list("lease_owner", "status")
                        .first()
                    )
                )
                if row is None or row[0] != owner:
                    if row is not None and (row[0] or Status(row[1]).is_terminal):
                        self.resumes.append(time.monotonic() - killed)
                    break
                time.sleep(0.05)


def _db(call: Any) -> Any:
    """A query of the bench itself: its own connections are terminated too by the database
    fault; waited out as the workers do (deployments.engine.database)."""
    from deployments.engine.database import retrying

    return retrying(call, shutdown=threading.Event())


def _patiently(call: Any) -> Any:
    """A control or API call, retried while the injector has the API server down or failing."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return call()
        except Exception:  # refused, dropped, 5xx, a terminated backend: the injected faults
            from deployments.engine.database import drop_connection

            drop_connection()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _setup(sim: Any) -> tuple[Any, Any, list[Any]]:
    from bench.common import kubesim_environment
    from deployments.models import Service
    from tests.factories import DEPLOYMENT_TEMPLATE

    user, environment = kubesim_environment(
        sim, user="soak", environment="soak", namespace=NAMESPACE, rollout_timeout=90
    )
    services = [
        Service.objects.create(
            name=f"soak-{i}",
            image_repository=f"registry.example.com/soak-{i}",
            deployment_template=DEPLOYMENT_TEMPLATE,
            default_variables={"replicas": 2},
        )
        for i in range(SERVICES)
    ]
    return user, environment, services


def _judge(deployment: Any, fate: str, sim: Any) -> tuple[bool, bool]:
    """(false verdict, double apply) of a finished deployment."""
    from kubernetes import client

    from deployments.status import Status

    runs = fate in ("ok", "slow")
    false = (deployment.status == Status.DONE) != runs or deployment.status == Status.CANCELED
    if deployment.status == Status.DONE:
        api = sim.api_client()
        try:
            running = client.AppsV1Api(api).read_namespaced_deployment(
                deployment.service.name, NAMESPACE
            )
        finally:
            api.close()
        image = running.spec.template.spec.containers[0].image
        ready = running.status.ready_replicas or 0
        false = false or image != deployment.version.image or ready < 2
    sends, double = 0, False
    for entry in deployment.timeline:
        message = entry["message"]
        if message.startswith("sending apply of Deployment/"):
            sends += 1
            double = double or sends > 1
        elif message.startswith("apply attempt") and sends:
            sends -= 1  # that send failed: the next one is a retry, not a second apply
    return false, double


def main(total: int, workers_count: int, seed: int) -> dict[str, Any]:
    from bench.common import remove_sqlite_database

    remove_sqlite_database(BENCH_DB)
    # The channel layer on a Redis of the bench's own, so that its outages are among the faults
    # (the workers and this process publish live updates there).
    redis = Redis() if shutil.which("redis-server") else None
    if redis is not None:
        os.environ["REDIS_URL"] = redis.url
        os.environ["APOLLO_REDIS_PREFIX"] = "soak"
    try:
        return _run(total, workers_count, seed, redis)
    finally:
        if redis is not None:
            redis.stop()


def _run(total: int, workers_count: int, seed: int, redis: Redis | None) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.common import summary, write_result
    from deployments.models import Deployment
    from deployments.services.deploy import request_deployment
    from deployments.status import Status
    from kubesim.testing import run_kubesim
    from tests.factories import make_version

    call_command("migrate", verbosity=0, interactive=False)
    postgres = connection.vendor == "postgresql"
    if postgres:  # a fresh run: BENCH_DATABASE_URL names a database of the bench's own
        call_command("flush", interactive=False, verbosity=0)
    rng = random.Random(seed)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_kubesim(tmp_dir=Path(tmp), namespaces=("default", NAMESPACE)) as sim,
    ):
        user, environment, services = _setup(sim)
        workers = Workers(workers_count)
        faults = Faults(sim, workers, postgres, seed, redis)
        faults.start()
        results: list[tuple[Any, str]] = []
        judged: list[tuple[Any, str, bool, bool]] = []
        stuck = 0
        try:
            while len(results) < total:
                wave = []
                for service in services[: min(len(services), total - len(results))]:
                    behaviour, seconds = rng.choice(FATES)
                    version = _db(lambda s=service: make_version(s))
                    if behaviour != "ok":
                        _patiently(
                            lambda v=version, b=behaviour, s=seconds: sim.register_image(
                                v.image, b, seconds=s
                            )
                        )
                    outcome = _db(
                        lambda s=service, v=version: request_deployment(
                            user=user, service=s, environment=environment, version=v
                        )
                    )
                    if outcome.deployment is not None:
                        wave.append((outcome.deployment, behaviour, time.monotonic()))
                for deployment, fate, requested in wave:
                    while True:
                        _db(deployment.refresh_from_db)
                        if Status(deployment.status).is_terminal:
                            break
                        if time.monotonic() - requested > STUCK_AFTER:
                            stuck += 1
                            break
                        time.sleep(0.2)
                    finished = _db(
                        lambda d=deployment: (
                            Deployment.objects.with_related()
                            .select_related("version__service")
                            .get(pk=d.pk)
                        )
                    )
                    results.append((finished, fate))
                    if Status(finished.status).is_terminal:
                        # Judged now, before the next wave deploys that service again.
                        verdict = _patiently(lambda d=finished, f=fate: _judge(d, f, sim))
                        judged.append((finished, fate, *verdict))
                print(
                    f"{len(results)}/{total} deployments, faults so far {faults.counts}", flush=True
                )
        finally:
            faults.stop.set()
            faults.join(timeout=30)
            workers.stop()
    false_verdicts = [d for d, _, false, _ in judged if false]
    doubles = [d for d, _, _, double in judged if double]
    resume = summary([s * 1000 for s in faults.resumes]) if faults.resumes else {}
    result = {
        "name": "soak",
        "setup": f"{total} deployments over {SERVICES} services, {workers_count} worker processes, "
        f"{'PostgreSQL' if postgres else 'SQLite'}"
        f"{' + Redis (channel layer)' if redis is not None else ''}, embedded kubesim, "
        f"seed {seed}; faults: " + ", ".join(f"{k} x{v}" for k, v in sorted(faults.counts.items())),
        "stuck": stuck,
        "false_verdicts": len(false_verdicts),
        "false_verdict_examples": [
            f"#{d.pk} {d.status}: {d.status_reason}" for d in false_verdicts[:5]
        ],
        "double_applies": len(doubles),
        "done": sum(d.status == Status.DONE for d, _ in results),
        "failed": sum(d.status == Status.FAILED for d, _ in results),
        "kills": faults.counts.get("kill", 0),
        "seconds": round(time.monotonic() - started, 1),
        "rows": [
            {
                "metric": "kill -9 → resumed by another worker "
                f"({len(faults.resumes)} deployments)",
                **resume,
            },
            {
                "metric": f"stuck {stuck}, false verdicts {len(false_verdicts)}, "
                f"double applies {len(doubles)} (of {len(results)} deployments)",
            },
        ],
    }
    write_result("soak", result)
    return result


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Deployments through random faults")
    parser.add_argument("--deployments", type=int, default=24, help="how many (the issue: 200)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    outcome = main(args.deployments, args.workers, args.seed)
    print(json.dumps(outcome, indent=2))
    sys.exit(1 if outcome["stuck"] or outcome["false_verdicts"] or outcome["double_applies"] else 0)
