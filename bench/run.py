"""`make bench`: run every bench/*_bench.py in its own process, then write the summary.

Each script writes bench/results/<name>.json; this collects them into latest.json and a
short Markdown table (latest.md) and prints the table.
"""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def _markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| benchmark | metric | median ms | p95 ms | baseline | baseline median ms | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for r in result.get("rows", []):
            lines.append(
                f"| {result['name']} | {r['metric']} | {r.get('median_ms', '')} | "
                f"{r.get('p95_ms', '')} | {r.get('baseline', '')} | "
                f"{r.get('baseline_median_ms', '')} | {r.get('ratio_median', '')} |"
            )
        if "setup" in result:
            lines.append(f"| {result['name']} | setup: {result['setup']} | | | | | |")
    extras = [_extra(result) for result in results]
    if any(extras):
        lines += [
            "",
            "| benchmark | metric | value | baseline | baseline value |",
            "|---|---|---|---|---|",
        ]
        lines += [line for block in extras for line in block]
    return "\n".join(lines) + "\n"


def _extra(result: dict[str, Any]) -> list[str]:
    """Figures that are not timings: memory, and counts of Kubernetes calls."""
    lines = []
    memory = result.get("memory")
    if memory:
        lines.append(
            f"| {result['name']} | {memory['metric']} | {memory['value_mb']} MB "
            f"({memory.get('per_tail_kb', '')} KB per tail) | {memory['baseline']} | "
            f"{memory['baseline_value_mb']} MB |"
        )
    calls = result.get("kubernetes_calls")
    if calls:
        lines.append(
            f"| {result['name']} | {calls['metric']} | {calls['value']} | {calls['baseline']} | "
            f"{calls['baseline_value']} |"
        )
    queries = result.get("sql_queries")
    if queries:
        lines.append(
            f"| {result['name']} | {queries['metric']} | {queries['value']} | "
            f"{queries['baseline']} | {queries['baseline_value']} |"
        )
    for key, value in (result.get("breakdown_median_ms") or {}).items():
        steps = "; ".join(f"{step.strip()} {ms} ms" for step, ms in value.items())
        lines.append(f"| {result['name']} | breakdown, {key} (medians) | {steps} | | |")
    return lines


# Benches that also run on the real control plane when it is built (cluster/build.sh): the
# result name, then the script's arguments.
ON_KUBERNETES = {"deploy": ("deploy-kubernetes", ["--cluster", "kubernetes"])}
CONTROL_PLANE = BENCH.parent / "var" / "bin" / "apollo-kubernetes"


def _runs(stem: str) -> list[tuple[str, list[str]]]:
    runs: list[tuple[str, list[str]]] = [(stem, [])]
    if stem in ON_KUBERNETES and CONTROL_PLANE.exists():
        name, args = ON_KUBERNETES[stem]
        runs.append((name, args))
    return runs


def _machine(started: str, load_before: tuple[float, float, float]) -> str:
    """Where and when the figures were measured: they mean little without it."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=BENCH.parent, capture_output=True, text=True
    ).stdout.strip()
    load_after = os.getloadavg()
    return (
        f"Measured {started} to {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on commit "
        f"{commit or '?'}: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{_memory_gb()} GB, Python {platform.python_version()}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min; more than the CPU "
        "count means other work shared the machine: compare ratios, not milliseconds).\n\n"
    )


def _memory_gb() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            kb = int(meminfo.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return "?"
    return f"{kb / 1024 / 1024:.0f}"


def main() -> int:
    """Run every bench (or those named on the command line: `bench/run.py deploy live`)."""
    RESULTS.mkdir(exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()
    failures = 0
    collected = []
    chosen = set(sys.argv[1:])
    for script in sorted(BENCH.glob("*_bench.py")):
        stem = script.stem.removesuffix("_bench")
        for name, args in _runs(stem):
            produced = RESULTS / f"{name}.json"
            if chosen and stem not in chosen:
                if produced.exists():  # keep the last result of a bench not run now
                    collected.append(json.loads(produced.read_text()))
                continue
            print(f"running {script.name} {' '.join(args)}…", flush=True)
            done = subprocess.run(
                [sys.executable, str(script), *args], cwd=BENCH.parent, check=False
            )
            if done.returncode != 0:
                print(f"{script.name} {' '.join(args)} failed with exit code {done.returncode}")
                failures += 1
                continue
            if produced.exists():
                collected.append(json.loads(produced.read_text()))
    (RESULTS / "latest.json").write_text(json.dumps(collected, indent=2) + "\n")
    table = _markdown(collected)
    (RESULTS / "latest.md").write_text(_machine(started, load_before) + table)
    print(table)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
