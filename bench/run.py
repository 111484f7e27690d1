"""`make bench`: run every bench/*_bench.py in its own process, then write the summary.

Each script writes bench/results/<name>.json; this collects them into latest.json and a
short Markdown table (latest.md) and prints the table.

`--postgres URL` (`make bench-pg`) runs the page benches a second time each on that PostgreSQL
database (created and dropped by the bench: its name must contain "bench"), with the channel
layer and the API throttles on Redis (`--redis URL`), as a production installation runs: their
rows, "... (PostgreSQL)", go to <name>-postgresql.json beside the SQLite ones.
"""

import argparse
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


# The page benches, which run on PostgreSQL too with --postgres (bench.common).
ON_POSTGRESQL = ("board", "history", "home", "metrics")
REDIS_PREFIX = "apollo_bench"

# The result name, the arguments, the environment added (None: not run now, its last result is
# kept, as for a bench not chosen: a page bench's PostgreSQL rows without --postgres).
Run = tuple[str, list[str], dict[str, str] | None]


def _runs(stem: str, options: argparse.Namespace) -> list[Run]:
    runs: list[Run] = [(stem, [], {})]
    if stem in ON_KUBERNETES and CONTROL_PLANE.exists():
        name, args = ON_KUBERNETES[stem]
        runs.append((name, args, {}))
    if stem in ON_POSTGRESQL:
        env = {"BENCH_DATABASE_URL": options.postgres} if options.postgres else None
        if env is not None and options.redis:
            env |= {"REDIS_URL": options.redis, "APOLLO_REDIS_PREFIX": REDIS_PREFIX}
        runs.append((f"{stem}-postgresql", [], env))
    return runs


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the benches and write the summary.")
    parser.add_argument("benches", nargs="*", help="only these (deploy, history, ...)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also run the page benches on this PostgreSQL database, which they drop and "
        "recreate (its name must contain 'bench'; never the one DATABASE_URL names)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="with --postgres: the Redis of those runs (keys apollo_bench:*)",
    )
    return parser.parse_args()


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


def _targets() -> str:
    """#16's targets against every result file here (bench.targets), each from its own run:
    the scale-100 files, for one, come from bench/scale_bench.py --rollouts 100 alone."""
    if str(BENCH.parent) not in sys.path:  # run as a script, sys.path starts at bench/
        sys.path.insert(0, str(BENCH.parent))
    from bench.targets import markdown, verdicts

    results = {
        path.stem: json.loads(path.read_text())
        for path in sorted(RESULTS.glob("*.json"))
        if path.stem != "latest"
    }
    return "## Targets of #16\n\n" + markdown(verdicts(results))


def main() -> int:
    """Run every bench (or those named on the command line: `bench/run.py deploy live`)."""
    RESULTS.mkdir(exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()
    failures = 0
    collected = []
    options = _options()
    chosen = set(options.benches)
    for script in sorted(BENCH.glob("*_bench.py")):
        stem = script.stem.removesuffix("_bench")
        for name, args, env in _runs(stem, options):
            produced = RESULTS / f"{name}.json"
            if (chosen and stem not in chosen) or env is None:
                if produced.exists():  # keep the last result of a bench not run now
                    collected.append(json.loads(produced.read_text()))
                continue
            where = " on PostgreSQL" if env else ""
            print(f"running {script.name} {' '.join(args)}{where}…", flush=True)
            done = subprocess.run(
                [sys.executable, str(script), *args],
                cwd=BENCH.parent,
                env={**os.environ, **env},
                check=False,
            )
            if done.returncode != 0:
                print(f"{script.name} {' '.join(args)} failed with exit code {done.returncode}")
                failures += 1
                continue
            if produced.exists():
                collected.append(json.loads(produced.read_text()))
    (RESULTS / "latest.json").write_text(json.dumps(collected, indent=2) + "\n")
    table = _markdown(collected) + "\n" + _targets()
    (RESULTS / "latest.md").write_text(_machine(started, load_before) + table)
    print(table)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
