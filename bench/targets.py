"""Issue #16's targets against a run's results (bench/results/*.json), as bench/run.py appends
them to latest.md: each target as the issue states it, and what the run reached.

The page targets are stated in milliseconds (History ≤ 10 ms, p95 ≤ 20; home, the status board
and the Deploy page ≤ 15) and measured, as the issue asks, against a trivial view in the same
run. The VM these benches run on changes speed by 2-4x between runs and within one (the trivial
view took 0.21-1.09 ms on 2026-12-02), and a page's time moves with it, so each page target is
judged twice: in milliseconds, and as the ratio to the trivial view it comes to on the reference
run (REFERENCE_TRIVIAL_MS: 10 ms is 25.4x, 15 ms 38.2x, 20 ms 50.9x). The other targets are
ratios or differences to a baseline of the same run already, or limits no machine's speed moves
much (memory, a lag of 100 ms).

A target whose result is missing is reported as not measured, never as held.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# The trivial view's median in session 12's run on this project's VM, the speed at which the
# page targets' milliseconds have been converted to ratios since (10 ms = 25.4x).
REFERENCE_TRIVIAL_MS = 0.393

Results = dict[str, dict[str, Any]]  # a bench's result by its name ("history-postgresql", ...)


@dataclass(frozen=True)
class Verdict:
    target: str
    reached: str
    held: bool | None  # as the issue states the target; None: not measured
    held_at_reference: bool | None = None  # page targets: as a ratio at the reference run
    page: bool = False


def verdicts(results: Results) -> list[Verdict]:
    """Every target of #16 that the benches measure, in the issue's order."""
    found: list[Verdict] = []
    for name, label in (("history", "SQLite"), ("history-postgresql", "PostgreSQL")):
        rows = _rows(results, name, lambda metric: metric.startswith("history"))
        found.append(_page(f"History pages median ≤ 10 ms ({label})", rows, 10.0, "median_ms"))
        found.append(_page(f"History pages p95 ≤ 20 ms ({label})", rows, 20.0, "p95_ms"))
    for name, label in (("home", "SQLite"), ("home-postgresql", "PostgreSQL")):
        rows = _rows(results, name, lambda metric: metric.startswith("home page"))
        found.append(_page(f"Home page ≤ 15 ms ({label})", rows, 15.0, "median_ms"))
    for name, label in (("board", "SQLite"), ("board-postgresql", "PostgreSQL")):
        rows = _rows(results, name, lambda metric: True)
        found.append(
            _page(f"Status board and Deploy page ≤ 15 ms ({label})", rows, 15.0, "median_ms")
        )
    for name, label in (("deploy", "kubesim"), ("deploy-kubernetes", "the real control plane")):
        found += _deploy(results.get(name), label)
    found += _live(results.get("live"))
    for name, label in (("scale-100", "SQLite"), ("scale-100-postgresql", "PostgreSQL")):
        found.append(_scale(results.get(name), label))
    return found


def markdown(found: Iterable[Verdict]) -> str:
    lines = [
        "| target (#16) | reached | held | as a ratio at the reference run |",
        "|---|---|---|---|",
    ]
    for v in found:
        lines.append(
            f"| {v.target} | {v.reached} | {_yes(v.held)} | "
            f"{_yes(v.held_at_reference) if v.page else ''} |"
        )
    note = (
        f"\nPage targets as ratios: the milliseconds divided by the reference run's trivial view "
        f"({REFERENCE_TRIVIAL_MS} ms), against each page's ratio to the trivial view of this run.\n"
    )
    return "\n".join(lines) + "\n" + note


def _yes(held: bool | None) -> str:
    return "not measured" if held is None else ("yes" if held else "**no**")


def _rows(results: Results, name: str, wanted: Callable[[str], bool]) -> list[dict[str, Any]]:
    result = results.get(name) or {}
    return [r for r in result.get("rows", []) if wanted(r.get("metric", "")) and "median_ms" in r]


def _page(target: str, rows: list[dict[str, Any]], limit_ms: float, figure: str) -> Verdict:
    """Every row within limit_ms, and within the ratio limit_ms comes to at the reference run
    (the row's figure over its own run's trivial view median)."""
    if not rows:
        return Verdict(target, "", None, None, page=True)
    ratio_limit = limit_ms / REFERENCE_TRIVIAL_MS
    times = [float(r[figure]) for r in rows]
    ratios = [float(r[figure]) / float(r["baseline_median_ms"]) for r in rows]
    over = [r["metric"] for r, ms in zip(rows, times, strict=True) if ms > limit_ms]
    reached = (
        f"{min(times):.1f}-{max(times):.1f} ms, {min(ratios):.1f}-{max(ratios):.1f}x "
        f"(limit {ratio_limit:.1f}x)"
    )
    if over:
        reached += f"; {len(over)} of {len(rows)} over in ms"
    return Verdict(target, reached, not over, max(ratios) <= ratio_limit, page=True)


ANSWERED = "POST /api/v1/deployments/ answered (201)"  # deploy_bench.py's breakdown


def _deploy(result: dict[str, Any] | None, label: str) -> list[Verdict]:
    targets = (
        f"POST answered ≤ 15 ms ({label})",
        f"first apply sent ≤ 10 ms after the POST returns ({label})",
        f"POST → DONE ≤ 3x a bare apply + watch ({label})",
    )
    if not result:
        return [Verdict(t, "", None) for t in targets]
    found = []
    steps = result.get("breakdown_median_ms", {})
    answered = [s[ANSWERED] for s in steps.values()]
    found.append(_within(targets[0], answered, 15.0, "ms"))
    after = [s["POST → first apply sent"] - s[ANSWERED] for s in steps.values()]
    found.append(_within(targets[1], after, 10.0, "ms"))
    ratios = [
        float(r["ratio_median"])
        for r in result.get("rows", [])
        if r["metric"].startswith("POST → DONE (poll")
        and r["baseline"] == "bare SSA + watch to complete"
    ]
    found.append(_within(targets[2], ratios, 3.0, "x"))
    side = result.get("side_by_side")
    if side:
        difference = float(side["difference_of_medians_ms"])
        found.append(
            Verdict(
                f"DONE within 50 ms of kubectl's apply + rollout status, pods starting in "
                f"{side['pod_startup_seconds']} s ({label})",
                f"{side['apollo_post_to_done_median_ms']} against "
                f"{side['kubectl_apply_rollout_status_median_ms']} ms ({difference:+.1f} ms)",
                difference <= 50.0,
            )
        )
    return found


def _within(target: str, values: list[float], limit: float, unit: str) -> Verdict:
    if not values:
        return Verdict(target, "", None)
    reached = " / ".join(f"{v:.2f}{' ' if unit == 'ms' else ''}{unit}" for v in values)
    return Verdict(target, reached, max(values) <= limit)


def _live(result: dict[str, Any] | None) -> list[Verdict]:
    targets = (
        "LiveTail ≥ 95 % of the direct stream's throughput",
        "LiveTail line latency p95 ≤ 60 ms",
        "100 open tails ≤ 25 MB above an idle server",
    )
    if not result:
        return [Verdict(t, "", None) for t in targets]
    rows = result.get("rows", [])
    throughput = next((r for r in rows if r["metric"].startswith("LiveTail ms per")), None)
    latency = next((r for r in rows if r["metric"].startswith("LiveTail line latency")), None)
    memory = result.get("memory")
    found = []
    if throughput is None:
        found.append(Verdict(targets[0], "", None))
    else:
        share = float(throughput["baseline_median_ms"]) / float(throughput["median_ms"])
        found.append(Verdict(targets[0], f"{share:.0%}", share >= 0.95))
    if latency is None:
        found.append(Verdict(targets[1], "", None))
    else:
        found.append(
            Verdict(targets[1], f"{latency['p95_ms']} ms", float(latency["p95_ms"]) <= 60.0)
        )
    if not memory:
        found.append(Verdict(targets[2], "", None))
    else:
        above = float(memory["value_mb"]) - float(memory["baseline_value_mb"])
        found.append(Verdict(targets[2], f"{above:.1f} MB", above <= 25.0))
    return found


def _scale(result: dict[str, Any] | None, label: str) -> Verdict:
    target = f"100 concurrent rollouts, one worker: every DONE within 100 ms ({label})"
    if not result:
        return Verdict(target, "", None)
    statuses = result.get("statuses", {})
    lag = result.get("done_lag_ms", {})
    worker = result.get("worker", {})
    every_done = statuses == {"DONE": 100}
    reached = (
        f"{statuses}; lag median {lag.get('median_ms')} ms, max {lag.get('max_ms')} ms; worker "
        f"{worker.get('cpu_seconds')} CPU s, peak RSS {worker.get('rss_peak_mb')} MB"
    )
    return Verdict(target, reached, every_done and float(lag.get("max_ms", 1e9)) <= 100.0)
