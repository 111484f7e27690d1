"""The environment page's live parts, end to end: kubesim -> Apollo (daphne, a child process) ->
a websocket client (its own process).

- LiveTail throughput (ms per 1000 lines, and lines per second) and the latency of a line
  (from the timestamp kubesim gives it to its arrival at the websocket client), against
  reading the same pod's log directly from kubesim with the kubernetes client in the same run;
- the server's memory (RSS) with 100 open tails of a pod writing QUIET_RATE lines a second,
  against the same server idle after one tail was opened and closed (so that the modules and
  shared-library pages a first tail loads count once, not per tail);
- Kubernetes calls made by 20 viewers of one environment page, against 1 viewer (counted at the
  environments.kube module boundary inside the server; they must be equal).

How the figures are made reliable on a loaded machine: throughput is a rate per window
(WINDOWS windows of WINDOW_SECONDS), its median and p95 over the windows; latency is measured
for the first 50 lines of every message (the oldest of a batch, so the worst), its median over
every line and its p95 as the median of each window's p95 (one burst of load does not decide
it); memory is the median of MEMORY_SAMPLES readings a second apart, idle and with the tails
open (once every tail has received its first lines).

Runs on its own SQLite database under var/ (BENCH_DATABASE_URL overrides).
"""

import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = ROOT / "var" / "bench-live.sqlite3"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{BENCH_DB}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")

WINDOW_SECONDS = 2.0
WINDOWS = 5
FAST_RATE = 100_000.0  # lines per second kubesim writes for the throughput test
SLOW_RATE = 200.0  # lines per second for the latency test (nothing queues)
QUIET_RATE = 20.0  # lines per second of the pod the 100 tails follow
TAILS = 100
MEMORY_SAMPLES = 5
VIEWERS = 20
# Kubernetes calls made by the server (child process), counted at the kube module boundary.
CALLS = multiprocessing.Array("i", 8)
# Every request of environments.kube goes through _call (answered at once) or _call_stream
# (watches, followed logs); the labels say what was asked.
CALL_KINDS = ["_call", "_call_stream"]


def _counting_application() -> Any:
    """The ASGI app of the child process, with the kube module's API requests counted."""
    import logging

    from channels.routing import get_default_application

    # 100 tails hold more streams than the client keeps idle connections for; not news.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    from environments.kube import apply, client, pods, read

    for index, name in enumerate(CALL_KINDS):
        original = getattr(client if name == "_call" else read, name)

        def counted(*args: Any, _index: int = index, _original: Any = original, **kw: Any) -> Any:
            with CALLS.get_lock():
                CALLS[_index] += 1
            return _original(*args, **kw)

        # The adapter's modules each import the two helpers (environments/kube/): count them all.
        for module in (client, apply, read, pods):
            if hasattr(module, name):
                setattr(module, name, counted)
    return get_default_application()


def _calls() -> dict[str, int]:
    with CALLS.get_lock():
        return {name: CALLS[i] for i, name in enumerate(CALL_KINDS)}


def _reset_calls() -> None:
    with CALLS.get_lock():
        for i in range(len(CALLS)):
            CALLS[i] = 0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _timestamp(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


class Socket:
    """A websocket client (websocket-client) reading JSON messages in a thread."""

    def __init__(self, url: str, cookie: str, origin: str, on_message: Callable[[Any], None]):
        import websocket

        # websocket-client validates UTF-8 byte by byte in pure Python (without wsaccel): at
        # ~40 µs a line that capped this client, not Apollo, near 16k lines/s. Browsers
        # validate natively, so the bench skips it to measure Apollo rather than itself.
        self.ws = websocket.create_connection(
            url,
            header=[f"Cookie: {cookie}"],
            origin=origin,
            timeout=30,
            skip_utf8_validation=True,
        )
        self.on_message = on_message
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                data = self.ws.recv()
                if not data:
                    return
                self.on_message(json.loads(data))
        except Exception:
            return

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a socket that is already gone
            self.ws.close()


def _setup(kubesim: Any) -> tuple[Any, Any, str]:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from deployments.models import Service
    from environments.models import Cluster, Environment

    call_command("migrate", verbosity=0, interactive=False)
    user = User.objects.create_superuser("bench", password="bench-password-0123")
    cluster = Cluster(
        name="kubesim",
        connection=Cluster.Connection.TOKEN,
        api_url=kubesim.url,
        ca_certificate=kubesim.ca_cert_pem,
    )
    cluster.set_token(kubesim.token)
    cluster.save()
    environment = Environment.objects.create(
        name="bench", cluster=cluster, namespace="default", availability="staging"
    )
    for name in ("chatty", "calm", "quiet"):
        Service.objects.create(
            name=name, image_repository=f"registry.example.com/{name}", deployment_template="-"
        )
    client = Client()
    client.force_login(user)
    from django.conf import settings

    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return environment, user, cookie


def _run_pod(kubesim: Any, environment: Any, name: str, rate: float) -> str:
    """A pod of service `name` whose container writes `rate` lines a second (fixed at start)."""
    from environments import kube

    kubesim.set_settings(log_rate=rate)
    labels = {
        "app": name,
        "app.kubernetes.io/managed-by": "apollo",
        "apollo.io/service": name,
        "apollo.io/environment": environment.name,
        "apollo.io/commit-sha": "a" * 40,
    }
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "app", "image": f"registry.example.com/{name}:{'a' * 40}"}
                    ]
                },
            },
        },
    }
    kube.apply(environment.cluster, environment.namespace, [doc])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items, _ = kube.list_objects(
            environment.cluster, "Pod", environment.namespace, label_selector=f"app={name}"
        )
        running = [i["metadata"]["name"] for i in items if i["status"].get("phase") == "Running"]
        if running:
            return str(running[0])
        time.sleep(0.1)
    raise RuntimeError("the benchmark pod did not start")


class Meter:
    """Counts lines per window and the latency of each line (the first 50 of a message)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.latencies: list[float] = []
        self.window_p95: list[float] = []

    def add(self, timestamps: list[str]) -> None:
        now = time.time()
        with self.lock:
            self.count += len(timestamps)
            self.latencies.extend((now - _timestamp(ts)) * 1000 for ts in timestamps[:50])

    def windows(self) -> list[float]:
        """ms per 1000 lines in each of WINDOWS windows; the latency p95 of each window too."""
        from bench.common import summary

        samples = []
        for _ in range(WINDOWS):
            with self.lock:
                start, first = self.count, len(self.latencies)
            time.sleep(WINDOW_SECONDS)
            with self.lock:
                lines = self.count - start
                latencies = self.latencies[first:]
            samples.append(WINDOW_SECONDS * 1000 / max(lines, 1) * 1000)
            if latencies:
                self.window_p95.append(summary(latencies)["p95_ms"])
        return samples

    def latency_row(self) -> dict[str, float]:
        """Median over every line; p95 as the median of the windows' p95."""
        return {
            "median_ms": round(statistics.median(self.latencies), 3),
            "p95_ms": round(statistics.median(self.window_p95), 3),
        }


def _direct(kubeconfig: str, namespace: str, pod: str, meter: Meter) -> None:
    """The baseline: the kubernetes client following the pod's log, no Apollo in between."""
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    response = core.read_namespaced_pod_log(
        pod, namespace, follow=True, timestamps=True, tail_lines=0, _preload_content=False
    )
    pending = b""
    for chunk in response.stream(64 * 1024):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        meter.add([line.split(b" ", 1)[0].decode() for line in lines if line])


def _follow_and_measure(how: str, source: dict[str, str], results: Any) -> None:
    """In a process of its own: follow the pod's log (directly, or through Apollo's socket),
    then measure WINDOWS windows. Not in the bench's process: there, the reader's work (the
    socket's JSON, the direct stream's splitting) would take the GIL from kubesim, which
    renders every line in Python, and the stream with more client work would slow its own
    source (py-spy of the bench process: kubesim ~86% of a CPU, the socket's JSON ~14%)."""
    meter = Meter()
    if how == "apollo":

        def on_message(message: Any) -> None:
            if message.get("type") == "lines":
                meter.add([ts for _, ts, _ in message["lines"]])

        Socket(source["url"], source["cookie"], source["origin"], on_message)
    else:
        follow = (source["kubeconfig"], source["namespace"], source["pod"], meter)
        threading.Thread(target=_direct, args=follow, daemon=True).start()
    time.sleep(1)
    with meter.lock:
        meter.latencies.clear()
    windows = meter.windows()
    with meter.lock:
        latencies = list(meter.latencies)
    results.put({"windows": windows, "latencies": latencies, "window_p95": meter.window_p95})


def _measured(how: str, source: dict[str, str]) -> tuple[list[float], Meter]:
    context = multiprocessing.get_context("spawn")  # not fork: kubesim's threads run here
    results = context.Queue()
    process = context.Process(target=_follow_and_measure, args=(how, source, results))
    process.start()
    try:
        found = results.get(timeout=120)
    finally:
        process.terminate()
        process.join(timeout=10)
    meter = Meter()
    meter.latencies, meter.window_p95 = found["latencies"], found["window_p95"]
    return found["windows"], meter


def _measure_logs(kubesim: Any, live: Any, cookie: str, pods: dict[float, str]) -> list[Any]:
    from bench.common import row

    results: dict[str, dict[str, list[float]]] = {}
    meters: dict[str, tuple[Meter, Meter]] = {}
    for rate, pod in pods.items():
        url = f"{live.ws_url}/ws/environments/bench/logs/?pod={pod}&tail=0"
        apollo_windows, apollo = _measured(
            "apollo", {"url": url, "cookie": cookie, "origin": live.url}
        )
        direct_windows, direct = _measured(
            "direct",
            {"kubeconfig": str(kubesim.kubeconfig_path), "namespace": "default", "pod": pod},
        )
        results[str(rate)] = {"apollo": apollo_windows, "direct": direct_windows}
        meters[str(rate)] = (apollo, direct)
    fast = results[str(FAST_RATE)]
    metric = f"LiveTail ms per 1000 log lines (kubesim writing {FAST_RATE / 1000:.0f}k/s)"
    baseline = "kubernetes client reading kubesim directly"
    throughput = row(metric, fast["apollo"], fast["direct"], baseline)
    throughput["lines_per_second"] = round(1_000_000 / throughput["median_ms"])
    throughput["baseline_lines_per_second"] = round(1_000_000 / throughput["baseline_median_ms"])
    throughput["throughput_ratio"] = round(
        throughput["lines_per_second"] / throughput["baseline_lines_per_second"], 3
    )
    apollo, direct = meters[str(SLOW_RATE)]
    ours, theirs = apollo.latency_row(), direct.latency_row()
    latency = {
        "metric": f"LiveTail line latency at {int(SLOW_RATE)} lines/s (p95: median of windows)",
        **ours,
        "baseline": baseline,
        "baseline_median_ms": theirs["median_ms"],
        "baseline_p95_ms": theirs["p95_ms"],
        "ratio_median": round(ours["median_ms"] / theirs["median_ms"], 2),
        "window_p95_ms": apollo.window_p95,
    }
    return [throughput, latency]


def _rss_median(pid: int) -> tuple[float, list[float]]:
    samples = []
    for _ in range(MEMORY_SAMPLES):
        time.sleep(1)
        samples.append(_rss_mb(pid))
    return statistics.median(samples), samples


def _open_tails(live: Any, cookie: str, count: int) -> list[Socket]:
    """count tails of the quiet pod, once each has received its first lines."""
    from environments.live.watcher import wait_for

    started: set[int] = set()
    lock = threading.Lock()

    def receiver(index: int) -> Callable[[Any], None]:
        def on_message(message: Any) -> None:
            if message.get("type") == "lines" and message["lines"]:
                with lock:
                    started.add(index)

        return on_message

    url = f"{live.ws_url}/ws/environments/bench/logs/?service=quiet&tail=100"
    sockets = [Socket(url, cookie, live.url, receiver(i)) for i in range(count)]
    assert wait_for(lambda: len(started) == count, 60), f"{len(started)} of {count} tails started"
    return sockets


def _measure_memory(live: Any, pid: int, cookie: str) -> dict[str, Any]:
    for socket in _open_tails(live, cookie, 1):  # the first tail's imports and pages, once
        socket.close()
    before, idle = _rss_median(pid)
    sockets = _open_tails(live, cookie, TAILS)
    during, open_ = _rss_median(pid)
    for socket in sockets:
        socket.close()
    return {
        "metric": f"server RSS MB with {TAILS} open tails (median of {MEMORY_SAMPLES} readings)",
        "value_mb": during,
        "samples_mb": open_,
        "baseline": "server RSS idle, after one tail opened and closed",
        "baseline_value_mb": before,
        "baseline_samples_mb": idle,
        "above_idle_mb": round(during - before, 1),
        "per_tail_kb": round((during - before) * 1024 / TAILS, 1),
    }


def _watch_calls(live: Any, cookie: str, viewers: int) -> dict[str, int]:
    from environments.live.watcher import wait_for

    _reset_calls()
    got: list[int] = []
    lock = threading.Lock()

    def on_message(message: Any) -> None:
        if message.get("type") == "environment.state":
            with lock:
                got.append(1)

    sockets = [
        Socket(f"{live.ws_url}/ws/environments/bench/status/", cookie, live.url, on_message)
        for _ in range(viewers)
    ]
    assert wait_for(lambda: len(got) >= viewers, 30), "not every viewer got the status"
    time.sleep(1)
    calls = _calls()
    for socket in sockets:
        socket.close()
    time.sleep(1)
    return calls


def main() -> dict[str, Any]:
    import logging

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    from bench.common import remove_sqlite_database

    remove_sqlite_database(BENCH_DB)
    import django

    django.setup()
    from daphne.testing import DaphneProcess

    from bench.common import write_result
    from kubesim.testing import FAST_SETTINGS, run_kubesim
    from tests.live import LiveServer

    tmp = ROOT / "var" / "bench-live-kubesim"
    tmp.mkdir(parents=True, exist_ok=True)
    with run_kubesim(tmp_dir=tmp) as kubesim:
        kubesim.set_settings(**{**FAST_SETTINGS, "log_buffer": 100_000})
        environment, _, cookie = _setup(kubesim)
        pods = {
            FAST_RATE: _run_pod(kubesim, environment, "chatty", FAST_RATE),
            SLOW_RATE: _run_pod(kubesim, environment, "calm", SLOW_RATE),
        }
        _run_pod(kubesim, environment, "quiet", QUIET_RATE)
        process = DaphneProcess("127.0.0.1", _counting_application)
        process.daemon = True
        process.start()
        if not process.ready.wait(timeout=30):
            raise RuntimeError("daphne did not start")
        port = process.port.value
        live = LiveServer(url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}")
        try:
            # Memory first: the 100k lines/s phase leaves the allocator holding freed memory.
            memory = _measure_memory(live, process.pid or 0, cookie)
            rows = _measure_logs(kubesim, live, cookie, pods)
            one = _watch_calls(live, cookie, 1)
            twenty = _watch_calls(live, cookie, VIEWERS)
        finally:
            process.terminate()
            process.join(timeout=10)
    calls = {
        "metric": f"Kubernetes calls for {VIEWERS} viewers of one environment page",
        "value": sum(twenty.values()),
        "detail": twenty,
        "baseline": "1 viewer",
        "baseline_value": sum(one.values()),
        "baseline_detail": one,
        "equal": one == twenty,
    }
    result = {
        "name": "live",
        "setup": "kubesim in-process, Apollo under daphne in a child process, each reader "
        "(Apollo's socket, the direct stream) in a process of its own; "
        f"throughput over {WINDOWS}x{WINDOW_SECONDS:.0f} s windows; {TAILS} tails of a pod "
        f"writing {QUIET_RATE:.0f} lines/s; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the start (other work shares the machine)",
        "rows": rows,
        "memory": memory,
        "kubernetes_calls": calls,
    }
    write_result("live", result)
    assert calls["equal"], f"20 viewers made other calls than 1: {twenty} vs {one}"
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
