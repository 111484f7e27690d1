"""kubesim: list 500 deployments / 5,000 pods, watch fan-out to 100 watchers, log follow rate.

Every figure is compared with a trivial `GET /version` round trip measured in the same run.
Lists are timed as raw HTTPS requests (server and transfer time, no model deserialisation);
the log rate is read through the official client's follow stream.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEPLOYMENTS = 500
REPLICAS = 10
WATCHERS = 100
LOG_RATE = 200_000
LOG_LINES = 20_000
TOKEN: list[str] = []  # "Bearer <admin token>", set once the server runs


def _deployment(index: int) -> dict[str, Any]:
    labels = {"app": f"svc-{index:03d}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"svc-{index:03d}"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
            },
        },
    }


def _populate(api: Any) -> float:
    from kubernetes import client

    apps = client.AppsV1Api(api)
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: apps.create_namespaced_deployment(
                    "bench", _deployment(i), _preload_content=False
                ),
                range(DEPLOYMENTS),
            )
        )
    while True:
        items = apps.list_namespaced_deployment("bench", _preload_content=False)
        data = json.loads(items.data)["items"]
        if all((d.get("status") or {}).get("readyReplicas") == REPLICAS for d in data):
            return time.perf_counter() - started
        time.sleep(0.5)


def _raw_get(api: Any, path: str) -> bytes:
    response = api.rest_client.pool_manager.request(
        "GET", api.configuration.host + path, headers={"Authorization": TOKEN[0]}
    )
    assert response.status == 200, response.data[:200]
    data: bytes = response.data
    return data


class FanOut:
    """WATCHERS watch streams; records when each sees a given ConfigMap name."""

    def __init__(self, api: Any) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api)
        self.seen: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        rv = self.core.list_namespaced_config_map("fanout").metadata.resource_version
        self.streams = [
            self.core.list_namespaced_config_map(
                "fanout", watch=True, resource_version=rv, _preload_content=False
            )
            for _ in range(WATCHERS)
        ]
        for stream in self.streams:
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        try:
            for line in stream:
                name = json.loads(line)["object"]["metadata"]["name"]
                with self.lock:
                    self.seen.setdefault(name, []).append(time.perf_counter())
        except Exception:  # noqa: S110 (streams are cut at the end of the benchmark)
            pass

    def round(self, index: int) -> float:
        name = f"event-{index}"
        started = time.perf_counter()
        self.core.create_namespaced_config_map("fanout", {"metadata": {"name": name}})
        while True:
            with self.lock:
                times = self.seen.get(name, [])
                if len(times) == WATCHERS:
                    return (max(times) - started) * 1000
            time.sleep(0.0005)


def _log_rate(api: Any, pod: str) -> list[float]:
    """Milliseconds to read LOG_LINES lines from a follow stream, several times."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    samples = []
    for _ in range(5):
        response = core.read_namespaced_pod_log(
            pod, "bench", follow=True, tail_lines=0, _preload_content=False
        )
        started = time.perf_counter()
        lines = 0
        for chunk in response.stream(65536):
            lines += chunk.count(b"\n")
            if lines >= LOG_LINES:
                break
        samples.append((time.perf_counter() - started) * 1000)
        response.close()
    return samples


def _start_logger(api: Any) -> str:
    from kubernetes import client

    core = client.CoreV1Api(api)
    body = {
        "metadata": {"name": "logger", "annotations": {"kubesim.io/log-rate": str(LOG_RATE)}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }
    core.create_namespaced_pod("bench", body)
    while core.read_namespaced_pod("logger", "bench").status.phase != "Running":
        time.sleep(0.05)
    return "logger"


def main() -> dict[str, Any]:
    from bench.common import row, time_calls, write_result
    from kubesim.testing import run_kubesim

    with run_kubesim(
        tmp_dir=Path(tempfile.mkdtemp()),
        namespaces=("bench", "fanout"),
        settings={"log_rate": 0, "history_size": 20000},
    ) as sim:
        api = sim.api_client()
        TOKEN.append(f"Bearer {sim.token}")
        api.rest_client.pool_manager.connection_pool_kw["maxsize"] = WATCHERS + 10
        populate_seconds = _populate(api)
        version = time_calls(lambda: _raw_get(api, "/version"), repeat=200)
        deployments = time_calls(
            lambda: _raw_get(api, "/apis/apps/v1/namespaces/bench/deployments"), repeat=50
        )
        pods = time_calls(lambda: _raw_get(api, "/api/v1/namespaces/bench/pods"), repeat=30)
        assert len(json.loads(_raw_get(api, "/api/v1/namespaces/bench/pods"))["items"]) == 5000
        fanout = FanOut(api)
        time.sleep(0.5)
        fan = [fanout.round(i) for i in range(20)]
        logs = _log_rate(api, _start_logger(api))
        api.close()
    lines_per_second = round(LOG_LINES / (sorted(logs)[len(logs) // 2] / 1000))
    result = {
        "name": "kubesim",
        "setup": f"{DEPLOYMENTS} deployments x {REPLICAS} pods (ready in "
        f"{populate_seconds:.1f}s), {WATCHERS} watchers, log follow at {LOG_RATE} lines/s; "
        f"follow throughput {lines_per_second} lines/s",
        "rows": [
            row(f"list {DEPLOYMENTS} deployments", deployments, version, "GET /version"),
            row(f"list {DEPLOYMENTS * REPLICAS} pods", pods, version, "GET /version"),
            row(f"event reaches {WATCHERS} watchers", fan, version, "GET /version"),
            row(f"follow {LOG_LINES} log lines", logs, version, "GET /version"),
        ],
        "log_lines_per_second": lines_per_second,
    }
    write_result("kubesim", result)
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
