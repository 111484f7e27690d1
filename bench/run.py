"""`make bench`: run every bench/*_bench.py in its own process, then write the summary.

Each script writes bench/results/<name>.json; this collects them into latest.json and a
short Markdown table (latest.md) and prints the table.
"""

import json
import subprocess
import sys
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
    return "\n".join(lines) + "\n"


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    failures = 0
    collected = []
    for script in sorted(BENCH.glob("*_bench.py")):
        print(f"running {script.name} …", flush=True)
        done = subprocess.run([sys.executable, str(script)], cwd=BENCH.parent, check=False)
        if done.returncode != 0:
            print(f"{script.name} failed with exit code {done.returncode}")
            failures += 1
            continue
        produced = RESULTS / f"{script.stem.removesuffix('_bench')}.json"
        if produced.exists():
            collected.append(json.loads(produced.read_text()))
    (RESULTS / "latest.json").write_text(json.dumps(collected, indent=2) + "\n")
    table = _markdown(collected)
    (RESULTS / "latest.md").write_text(table)
    print(table)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
