"""Deploy latency: from the deploy POST to the first apply and to DONE, on kubesim or the real
control plane.

    bench/deploy_bench.py                      # kubesim (writes bench/results/deploy.json)
    bench/deploy_bench.py --cluster kubernetes # cluster/'s kube-apiserver, controllers, scheduler
                                               # and simulated nodes (deploy-kubernetes.json;
                                               # needs cluster/build.sh first)

The clock starts when `POST /api/v1/deployments/` is sent (Django's test client through the
whole middleware and DRF stack, token authentication included). Pods start instantly (kubesim
startup_delay 0), so what is measured is Apollo's own overhead: the API request, the worker's
poll for PENDING rows, rendering, server-side apply, the follower's watches and the
bookkeeping around them. Baselines measured in the same run: the
bare kubernetes client's server-side apply of the same manifests, and that apply followed by a
watch until the rollout is complete (what `kubectl apply && kubectl rollout status` does).

On the real control plane the same is measured, and the baselines are taken on it too, so each
cluster's overhead is Apollo's over a bare client there: its controllers, scheduler and simulated
kubelet (fast settings, as in the tests) add their own latency to both sides.

Side by side (kubesim only), pods that take SIDE_BY_SIDE_STARTUP seconds to start: the same
manifest change of the same Deployment on the same cluster, alternately by Apollo (POST → DONE)
and by `kubectl apply --server-side --force-conflicts` + `kubectl rollout status` (kubectl from
var/bin/kubectl, built by `make kubectl`, else the one on PATH; the case is skipped with a
message when there is none). The figure is the difference of the medians: what Apollo adds to
the moment kubectl would say the rollout is complete. Both sides run in the same loaded
process and machine, alternating, so that the noise falls on both.

Runs kubesim embedded (or starts the control plane) in this process, which also sends the POST
through Django's test client, DEBUG off as in production, on its own SQLite database under var/
(BENCH_DATABASE_URL overrides), never on the database DATABASE_URL names. The worker is
`manage.py rundeployments` in a process of its own, as in production, woken at commit through
its SQLite wake-up socket; its claim, applies, follow and finish are wrapped to stamp
perf_counter() (CLOCK_MONOTONIC, one clock for the machine's processes) and the stamps come back
on its stdout. `--worker thread` runs it in a thread of this process instead, as sessions up to
13 measured: it then waits for the GIL behind the POST's own response and kubesim's threads
(Python hands the GIL over every 5 ms), which production's separate process never does.
"""

import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = ROOT / "var" / "bench-deploy.sqlite3"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{BENCH_DB}")
os.environ.pop("REDIS_URL", None)  # live updates go to the in-memory layer, not a real Redis
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")

DEPLOYS = 20
SIDE_BY_SIDE_RUNS = 10  # of each side, alternating
SIDE_BY_SIDE_STARTUP = 2.0  # seconds a pod takes to start (kubesim), as in the demo
ROLLOUT_STATUS = ("rollout", "status", "deployment/web", "--timeout=60s")
NAMESPACE = "bench"
POLL_INTERVALS = (0.2, 0.05)  # rundeployments' default, and a tight loop
WORKER_MODES = {
    "process": "worker: manage.py rundeployments in a process of its own",
    "thread": "worker in a thread of the process that serves the POST and runs kubesim",
}
SERVICE_TEMPLATE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{service}}
spec:
  selector: {app: {{service}}}
  ports:
    - port: 80
"""


class Stamps:
    """perf_counter() of each step of the deployment being measured (one at a time).

    perf_counter() is CLOCK_MONOTONIC on Linux, one clock for every process of the machine:
    the worker's process stamps its steps and sends them here (`_read_stamps`), and they
    compare with this process's stamps of the POST."""

    def __init__(self) -> None:
        self.sink: Any = None  # the worker's process: where each first stamp is sent
        self.reset()

    def reset(self) -> None:
        self.at: dict[str, float] = {}
        self.finished = threading.Event()

    def mark(self, step: str, at: float | None = None) -> None:
        stamp = time.perf_counter() if at is None else at
        if self.at.setdefault(step, stamp) != stamp:
            return  # (only a step's first time counts)
        if self.sink is not None:
            self.sink(step, stamp)
        if step == "finished":
            self.finished.set()


STAMPS = Stamps()
STAMP_PREFIX = "STAMP "  # the worker's lines that carry a stamp (its other output is not)


def _instrument() -> None:
    """Wrap the worker's claim, apply and finish to time-stamp them (the same calls it makes)."""
    from deployments.engine import rollout, worker
    from environments import kube

    claim, apply, finish = worker.claim, kube.apply, worker.Run.finish
    follow = rollout.Follower.follow

    def timed_claim(*args: Any, **kwargs: Any) -> Any:
        claimed = claim(*args, **kwargs)
        if claimed is not None:
            if STAMPS.sink is not None:
                STAMPS.reset()  # the worker's process: a new deployment's steps
            STAMPS.mark("claimed")
        return claimed

    def timed_apply(*args: Any, **kwargs: Any) -> Any:
        STAMPS.mark("first_apply_sent")
        result = apply(*args, **kwargs)
        STAMPS.mark("first_apply_answered")
        return result

    def timed_finish(self: Any, status: Any, reason: str, **kwargs: Any) -> None:
        finish(self, status, reason, **kwargs)
        STAMPS.mark("status", 1.0 if status == "DONE" else 0.0)
        STAMPS.mark("finished")

    def timed_follow(self: Any, **kwargs: Any) -> Any:
        # Follower.follow is a generator (the worker records what it yields): wrap it as one.
        STAMPS.mark("follow_started")
        result = yield from follow(self, **kwargs)
        STAMPS.mark("verdict")
        return result

    worker.claim = timed_claim
    rollout.Follower.follow = timed_follow  # type: ignore[method-assign]
    kube.apply = timed_apply
    worker.Run.finish = timed_finish  # type: ignore[method-assign]


@contextlib.contextmanager
def _worker(poll: float, mode: str) -> Iterator[None]:
    """A deployment worker for the duration: `manage.py rundeployments` in a process of its
    own, as in production (mode "process"), or run_worker in a thread of this process, which
    then shares the GIL with the POST and with kubesim (mode "thread")."""
    if mode == "thread":
        from deployments.engine import worker

        shutdown = threading.Event()
        thread = threading.Thread(
            target=worker.run_worker,
            kwargs={"shutdown": shutdown, "poll_interval": poll, "owner": "bench"},
            daemon=True,
        )
        thread.start()
        try:
            yield
        finally:
            shutdown.set()
            thread.join(timeout=30)
        return
    command = [sys.executable, str(Path(__file__).resolve()), "--worker-child", str(poll)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert process.stdout is not None
    reader = threading.Thread(target=_read_stamps, args=(process.stdout,), daemon=True)
    reader.start()
    try:
        yield
    finally:
        process.terminate()  # SIGTERM: rundeployments stops claiming and exits
        process.wait(timeout=60)
        reader.join(timeout=10)


def _read_stamps(lines: Any) -> None:
    for line in lines:
        if line.startswith(STAMP_PREFIX):
            step, at = json.loads(line[len(STAMP_PREFIX) :])
            STAMPS.mark(step, at)


def _worker_child(poll: float) -> None:
    """The worker's process: rundeployments, its steps stamped and sent on stdout."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings

    override_settings(DEBUG=False).enable()

    lock = threading.Lock()  # the documents are applied by concurrent threads

    def send(step: str, at: float) -> None:
        with lock:
            sys.stdout.write(f"{STAMP_PREFIX}{json.dumps([step, at])}\n")
            sys.stdout.flush()

    STAMPS.sink = send
    _instrument()
    call_command("rundeployments", poll_interval=poll)


def _setup(sim: Any) -> tuple[Any, Any, Any]:
    from bench.common import kubesim_environment
    from deployments.models import Service

    user, environment = kubesim_environment(
        sim, user="bench", environment="bench", namespace=NAMESPACE, rollout_timeout=60
    )
    from tests.factories import DEPLOYMENT_TEMPLATE

    service = Service.objects.create(
        name="web",
        image_repository="registry.example.com/web",
        deployment_template=DEPLOYMENT_TEMPLATE,
        service_template=SERVICE_TEMPLATE,
        default_variables={"replicas": 2},
    )
    return user, environment, service


def _deploy_once(key: str, environment: Any, service: Any, poll: float) -> dict[str, float]:
    import secrets

    from django.test import Client

    from deployments.models import DeployableVersion

    version = DeployableVersion.objects.create(
        service=service, git_commit_sha=secrets.token_hex(20)
    )
    body = {
        "service": service.name,
        "environment": environment.name,
        "git_commit_sha": version.git_commit_sha,
    }
    client = Client(headers={"Authorization": f"Token {key}", "Host": "127.0.0.1"})
    # A request arrives at a random moment of the worker's poll cycle, as real ones do.
    time.sleep(random.uniform(0, poll))
    STAMPS.reset()
    start = time.perf_counter()
    response = client.post("/api/v1/deployments/", body, content_type="application/json")
    requested = time.perf_counter()
    assert response.status_code == 201, response.content
    if not STAMPS.finished.wait(60):
        raise RuntimeError("the deployment did not finish within 60 s")
    assert STAMPS.at["status"] == 1.0, response.json()["id"]
    at = STAMPS.at
    return {
        "request_call": (requested - start) * 1000,  # the POST, answered 201
        "to_claim": (at["claimed"] - start) * 1000,
        "to_first_apply": (at["first_apply_sent"] - start) * 1000,
        "first_apply_rtt": (at["first_apply_answered"] - at["first_apply_sent"]) * 1000,
        "to_done": (at["finished"] - start) * 1000,
        "apply_to_done": (at["finished"] - at["first_apply_sent"]) * 1000,
        "apply_to_follow": (at["follow_started"] - at["first_apply_sent"]) * 1000,
        "follow": (at["verdict"] - at["follow_started"]) * 1000,
        "verdict_to_done": (at["finished"] - at["verdict"]) * 1000,
    }


def _documents(service: Any, environment: Any, sha: str) -> list[dict[str, Any]]:
    from deployments.manifests import render_for
    from deployments.models import DeployableVersion

    version = DeployableVersion(service=service, git_commit_sha=sha)
    return render_for(service=service, environment=environment, version=version, group=None)


def _bare_apply(apps: Any, core: Any, documents: list[dict[str, Any]]) -> None:
    for doc in documents:
        patch = (
            apps.patch_namespaced_deployment
            if doc["kind"] == "Deployment"
            else (core.patch_namespaced_service)
        )
        patch(
            doc["metadata"]["name"],
            NAMESPACE,
            doc,
            field_manager="bench",
            force=True,
            _content_type="application/apply-patch+yaml",
        )


def _baselines(sim: Any, service: Any, environment: Any) -> tuple[list[float], list[float]]:
    """The bare client: SSA round trip of the same manifests; SSA then watch until complete."""
    import secrets

    from kubernetes import client, watch

    from bench.common import rollout_complete_json

    api = sim.api_client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    applies, rollouts = [], []
    for _ in range(DEPLOYS):
        documents = _documents(service, environment, secrets.token_hex(20))
        start = time.perf_counter()
        _bare_apply(apps, core, documents)
        applies.append((time.perf_counter() - start) * 1000)
    for _ in range(DEPLOYS):
        documents = _documents(service, environment, secrets.token_hex(20))
        start = time.perf_counter()
        _bare_apply(apps, core, documents)
        watcher = watch.Watch()
        for event in watcher.stream(
            apps.list_namespaced_deployment,
            NAMESPACE,
            field_selector="metadata.name=web",
            timeout_seconds=30,
            deserialize=False,
        ):
            if rollout_complete_json(event["object"]):
                watcher.stop()
        rollouts.append((time.perf_counter() - start) * 1000)
    api.close()
    return applies, rollouts


def _kubectl() -> str | None:
    built = ROOT / "var" / "bin" / "kubectl"
    if built.exists():
        return str(built)
    import shutil

    return shutil.which("kubectl")


def _kubectl_once(kubectl: str, kubeconfig: Path, documents: list[dict[str, Any]]) -> float:
    """kubectl apply --server-side of the documents, then rollout status: milliseconds."""
    import json
    import subprocess

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as manifest:
        json.dump({"apiVersion": "v1", "kind": "List", "items": documents}, manifest)
    base = [kubectl, "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE]
    start = time.perf_counter()
    # --force-conflicts: Apollo's field manager owns the fields the runs before set.
    # --validate=false: kubesim serves no OpenAPI schema to validate against.
    apply = [*base, "apply", "--server-side", "--force-conflicts", "--validate=false"]
    for command in ([*apply, "-f", manifest.name], [*base, *ROLLOUT_STATUS]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    elapsed = (time.perf_counter() - start) * 1000
    Path(manifest.name).unlink()
    return elapsed


def _side_by_side(sim: Any, key: str, environment: Any, service: Any, mode: str) -> dict[str, Any]:
    """Apollo's POST → DONE and kubectl's apply + rollout status, alternating, realistic pods."""
    import secrets

    from bench.common import row

    kubectl = _kubectl()
    if kubectl is None:
        return {"skipped": "no kubectl: `make kubectl` builds var/bin/kubectl"}
    apollo, bare = [], []
    with _worker(POLL_INTERVALS[0], mode), sim.settings(startup_delay=SIDE_BY_SIDE_STARTUP):
        _deploy_once(key, environment, service, 0)  # warm-up of both sides
        _kubectl_once(kubectl, sim.kubeconfig_path, _documents(service, environment, "0" * 40))
        for _ in range(SIDE_BY_SIDE_RUNS):
            apollo.append(_deploy_once(key, environment, service, 0)["to_done"])
            documents = _documents(service, environment, secrets.token_hex(20))
            bare.append(_kubectl_once(kubectl, sim.kubeconfig_path, documents))
    difference = statistics.median(apollo) - statistics.median(bare)
    return {
        "kubectl": kubectl,
        "pod_startup_seconds": SIDE_BY_SIDE_STARTUP,
        "runs_each": SIDE_BY_SIDE_RUNS,
        "apollo_post_to_done_median_ms": round(statistics.median(apollo), 1),
        "kubectl_apply_rollout_status_median_ms": round(statistics.median(bare), 1),
        "difference_of_medians_ms": round(difference, 1),
        "target": "Apollo's DONE within 50 ms of kubectl's",
        "rows": [
            row(
                "POST → DONE, pods starting in 2 s (side by side)",
                apollo,
                bare,
                "kubectl apply --server-side + rollout status",
            )
        ],
    }


def _median(samples: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(s[key] for s in samples), 1)


def _cluster(kind: str, tmp: Path) -> Any:
    """A context manager giving the cluster's handle (url, token, ca_cert_pem, api_client)."""
    if kind == "kubesim":
        from kubesim.testing import run_kubesim

        return run_kubesim(tmp_dir=tmp, startup_delay=0, namespaces=("default", NAMESPACE))
    return _control_plane_with_namespace(tmp)


def _control_plane_with_namespace(tmp: Path) -> Any:
    import contextlib

    from kubernetes import client

    from tests.cluster.control_plane import run_control_plane

    @contextlib.contextmanager
    def running() -> Any:
        with run_control_plane(tmp) as handle:
            api = handle.api_client()
            core = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            # A real namespace takes pods once its default ServiceAccount exists.
            deadline = time.monotonic() + 60
            while not core.list_namespaced_service_account(NAMESPACE).items:
                if time.monotonic() > deadline:
                    raise RuntimeError("the bench namespace got no ServiceAccount within 60 s")
                time.sleep(0.1)
            api.close()
            yield handle

    return running()


def main(
    cluster_kind: str = "kubesim", *, side_by_side: bool = True, worker_mode: str = "process"
) -> dict[str, Any]:
    from bench.common import remove_sqlite_database

    remove_sqlite_database(BENCH_DB)
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings

    # As in production: with DEBUG on (the settings' default for development) Django logs every
    # query of the POST and the worker (its debug cursor: 0.75 ms of the isolated POST's
    # 12.7 ms of CPU), which production does not pay.
    override_settings(DEBUG=False).enable()
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        # The worker thread and the requests write at once: wait for the lock, like the app.
        settings.DATABASES["default"].setdefault("OPTIONS", {}).update(
            timeout=20, transaction_mode="IMMEDIATE"
        )
    from django.core.management import call_command

    from bench.common import row, write_result

    call_command("migrate", verbosity=0, interactive=False)
    _instrument()
    with tempfile.TemporaryDirectory() as tmp, _cluster(cluster_kind, Path(tmp)) as sim:
        user, environment, service = _setup(sim)
        from permissions.tokens import issue_token

        _, key = issue_token(actor=None, user=user, name="bench")
        runs: dict[float, list[dict[str, float]]] = {}
        for poll in POLL_INTERVALS:
            with _worker(poll, worker_mode):
                _deploy_once(key, environment, service, poll)  # warm-up: clients, templates
                runs[poll] = [_deploy_once(key, environment, service, poll) for _ in range(DEPLOYS)]
        applies, rollouts = _baselines(sim, service, environment)
        side = (
            _side_by_side(sim, key, environment, service, worker_mode)
            if cluster_kind == "kubesim" and side_by_side
            else None
        )
    rows = []
    for poll, samples in runs.items():
        label = f"(poll {poll} s)"
        to_apply = [s["to_first_apply"] for s in samples]
        to_done = [s["to_done"] for s in samples]
        rows += [
            row(f"POST → first apply sent {label}", to_apply, applies, "bare SSA round trip"),
            row(f"POST → DONE {label}", to_done, applies, "bare SSA round trip"),
            row(f"POST → DONE {label}", to_done, rollouts, "bare SSA + watch to complete"),
        ]
    breakdown = {
        f"poll {poll} s": {
            "POST /api/v1/deployments/ answered (201)": _median(samples, "request_call"),
            "POST → claimed by the worker": _median(samples, "to_claim"),
            "POST → first apply sent": _median(samples, "to_first_apply"),
            "first apply round trip (one document)": _median(samples, "first_apply_rtt"),
            "first apply sent → DONE": _median(samples, "apply_to_done"),
            "  apply (all documents) and its timeline entry": _median(samples, "apply_to_follow"),
            "  following the rollout to a verdict": _median(samples, "follow"),
            "  snapshot and DONE transition": _median(samples, "verdict_to_done"),
            "POST → DONE": _median(samples, "to_done"),
        }
        for poll, samples in runs.items()
    }
    where = {
        "kubesim": "kubesim embedded with startup_delay 0",
        "kubernetes": "the real control plane (cluster/: kube-apiserver v1.37.2, controllers, "
        "scheduler, simulated nodes with --startup-delay=0s)",
    }[cluster_kind]
    name = "deploy" if cluster_kind == "kubesim" else "deploy-kubernetes"
    result = {
        "name": name,
        "cluster": cluster_kind,
        "setup": f"{DEPLOYS} sequential deployments of 2 replicas (Deployment + Service), "
        f"{where}, {WORKER_MODES[worker_mode]}, SQLite",
        "rows": rows,
        "breakdown_median_ms": breakdown,
    }
    if side is not None:
        rows += side.pop("rows", [])
        result["rows"] = rows
        result["side_by_side"] = side
    write_result(name, result)
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Apollo's deploy latency on a cluster")
    parser.add_argument("--cluster", choices=("kubesim", "kubernetes"), default="kubesim")
    parser.add_argument(
        "--no-side-by-side",
        action="store_true",
        help="only the instant-pod runs (a quicker before/after of Apollo's own overhead)",
    )
    parser.add_argument(
        "--worker",
        choices=tuple(WORKER_MODES),
        default="process",
        help="process (default): rundeployments in a process of its own, as in production; "
        "thread: in this process, sharing its GIL with the POST and kubesim",
    )
    parser.add_argument("--worker-child", type=float, metavar="POLL", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker_child is not None:
        _worker_child(arguments.worker_child)
        sys.exit(0)
    result = main(
        arguments.cluster, side_by_side=not arguments.no_side_by_side, worker_mode=arguments.worker
    )
    print(json.dumps(result, indent=2))
