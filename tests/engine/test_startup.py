"""The worker process's start (deployments.engine.startup, #16): the Kubernetes client's API
classes are loaded before the first claim, and what was loaded by then is out of the garbage
collector's full collections, which walked it all with every thread stopped (105-177 ms at
the moment a burst of verdicts came)."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deployments.engine import startup
from environments.kube.client import _apis
from tests.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: the client's API modules before and after settle(), the freeze count.
SETTLE = """
import gc, json, sys
from deployments.engine import startup
def loaded():
    return sorted(m for m in sys.modules if m.startswith("kubernetes.client.api."))
before = loaded()
frozen = startup.settle()
print(json.dumps({"before": before, "after": loaded(), "frozen": frozen,
                  "count": gc.get_freeze_count()}))
"""
API_MODULES = {
    "kubernetes.client.api.core_v1_api",
    "kubernetes.client.api.apps_v1_api",
    "kubernetes.client.api.networking_v1_api",
}


def test_settle_loads_the_api_classes_and_freezes_what_was_loaded() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SETTLE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert not API_MODULES & set(seen["before"])  # the client loads them lazily
    assert set(seen["after"]) >= API_MODULES
    assert seen["frozen"] == seen["count"] > 10_000


def test_every_api_class_environments_kube_uses_is_loaded_at_start(staging: Any) -> None:
    used = {type(api).__name__ for api in _apis(staging.cluster).values()}
    assert used <= set(startup.API_CLASSES)


@pytest.mark.django_db(transaction=True)
def test_the_worker_process_settles_before_it_starts() -> None:
    worker = WorkerProcess()
    try:
        worker.wait_for_line("started")
        line = worker.wait_for_line("kept out of garbage collection")
        assert int(line.split()[0]) > 10_000
    finally:
        if worker.alive():
            worker.process.kill()
            worker.process.wait(timeout=10)
