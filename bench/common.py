"""Shared helpers for benchmark scripts: timing, statistics and result files."""

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


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
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
