"""bench/scale_trace.py's report: each step of a rollout in ms after kubesim held it complete."""

from pathlib import Path
from typing import Any

import pytest

from bench.common import rollout_complete_json
from bench.scale_trace import report

BENCH, WORKER = "100", "200"


def _trace(tmp_path: Path) -> Path:
    lines = [
        (10.000, BENCH, "loop", "complete", "svc-001"),
        (10.004, BENCH, "watch", "seen", "svc-001"),
        (10.010, WORKER, "watch-Deployment-scale", "dispatch", "svc-001"),
        (10.012, WORKER, "deploy_3", "take", "svc-001"),
        (10.013, WORKER, "deploy_3", "verdict", "svc-001"),
        (10.015, WORKER, "deploy_3", "finish", "svc-001"),
        (10.020, WORKER, "deploy_3", "commit_in", ""),
        (10.021, WORKER, "deploy_3", "begin_wait", ""),
        (10.101, WORKER, "deploy_3", "begin_got", ""),
        (10.105, WORKER, "deploy_3", "end", ""),
        (10.106, WORKER, "deploy_3", "commit_out", ""),
        (10.050, BENCH, "MainThread", "begin_wait", ""),
        (10.051, BENCH, "MainThread", "begin_got", ""),
        (10.071, BENCH, "MainThread", "end", ""),
    ]
    path = tmp_path / "trace.tsv"
    path.write_text("".join("\t".join([f"{t:.6f}", *rest]) + "\n" for t, *rest in lines))
    return path


def test_each_step_after_the_completion_and_who_held_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report(_trace(tmp_path), top=5)
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("svc-001"))
    assert row.split() == [
        "svc-001", "4.0", "10.0", "12.0", "13.0", "15.0", "20.0", "106.0", "80.0",
    ]  # fmt: skip
    assert "worker deploy" in out
    held = {line.split()[0]: line for line in out.splitlines() if "transactions," in line}
    assert "median  20.0" in held["bench"]
    assert "median   4.0" in held["worker"]


DONE: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "svc-001", "generation": 2},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "svc-001"}},
        "template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}},
    },
    "status": {
        "observedGeneration": 2,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
    },
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, True),
        ({"observedGeneration": 1}, False),  # the controller has not seen the change yet
        ({"availableReplicas": 1}, False),
        ({"readyReplicas": 1}, False),
        ({"replicas": 3}, False),  # an old replica is still there
        ({"updatedReplicas": 1, "replicas": 1}, False),
    ],
)
def test_complete_is_kubectl_rollout_status(change: dict[str, int], expected: bool) -> None:
    """The one rule of every bench's watch and of the trace's "complete" in kubesim, on the
    API's JSON. (From bench/common.py: importing bench/deploy_bench.py points DATABASE_URL at
    its bench database, and every process the tests start later would inherit it.)"""
    assert rollout_complete_json({**DONE, "status": {**DONE["status"], **change}}) is expected
