"""500 deployments and 5,000 pods: correctness only (timings live in bench/kubesim_bench.py)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubesim.testing import KubesimHandle, run_kubesim
from tests.kubesim.helpers import deployment, wait_for


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimHandle]:
    with run_kubesim(
        tmp_dir=tmp_path_factory.mktemp("big"), namespaces=("big",), settings={"log_rate": 0}
    ) as handle:
        yield handle


def create_many(api: Any, count: int, replicas: int) -> None:
    apps = client.AppsV1Api(api)

    def create(index: int) -> None:
        apps.create_namespaced_deployment(
            "big", deployment(f"svc-{index:03d}", replicas=replicas), _preload_content=False
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))


def test_five_hundred_deployments_and_five_thousand_pods(
    big: KubesimHandle, tmp_path: Path
) -> None:
    api = big.api_client()
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 8
    create_many(api, 500, 10)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)

    def all_ready() -> bool:
        items = apps.list_namespaced_deployment("big").items
        return len(items) == 500 and all(d.status and d.status.ready_replicas == 10 for d in items)

    wait_for(all_ready, timeout=90, interval=1, what="500 ready deployments")
    pods = core.list_namespaced_pod("big")
    assert len(pods.items) == 5000
    assert all(p.status.phase == "Running" for p in pods.items)
    page = core.list_namespaced_pod("big", limit=1000, label_selector="app=svc-007")
    assert len(page.items) == 10
    names = {p.metadata.name for p in pods.items}
    assert len(names) == 5000
    api.close()
