"""Where the lag of the 100-rollout bench goes (#16): bench/scale_bench.py, each step stamped.

    bench/scale_trace.py                  # 100 rollouts on SQLite (BENCH_DATABASE_URL as there)
    bench/scale_trace.py --top 20         # the 20 slowest verdicts

A diagnosis, not a measurement of record: it writes no result file, and each stamp (a line
written to a file) costs a little. For each rollout, in ms after kubesim's store first held its
Deployment complete (a listener in the bench's process, where kubesim is embedded):

- seen: the bench's own watch saw it (the moment scale_bench's lag is counted from);
- dispatch: the worker's shared Deployment watch handed the event to its followers
  (deployments/engine/object_watch.py);
- take: the follower took it off its queue (rollout.Follower);
- verdict: the follower decided DONE;
- finish: the worker began to record it (Run.finish_with_snapshot);
- commit_in, commit_out: deployments.engine.verdicts.commit entered and returned (DONE
  committed); on SQLite, "BEGIN waited" is how long its transaction's BEGIN IMMEDIATE waited for the
  file's write lock (blank for a verdict written in another's batch: verdicts.py).

Then, for the whole run, which transactions held SQLite's write lock and for how long, by the
thread (the bench's POSTs, the worker's claims, verdicts, timeline writes, heartbeat) that held
it. A write that is one statement outside any transaction (a claim, or a verdict, with no
message to queue: Deployment.transition_to) holds the lock only while SQLite runs it and is
not counted.

The worker runs as `bench/scale_trace.py --worker <rundeployments arguments>`: the stamps are
put around the functions named above, then the command runs as manage.py would run it.
"""

import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import rollout_complete_json  # noqa: E402 (after the path)

STEPS = ("seen", "dispatch", "take", "verdict", "finish", "commit_in", "commit_out")
_lock = threading.Lock()
_out: Any = None


def stamp(what: str, name: str = "") -> None:
    """One line of the trace: time, process, thread, step, object."""
    global _out
    line = f"{time.time():.6f}\t{os.getpid()}\t{threading.current_thread().name}\t{what}\t{name}\n"
    with _lock:
        if _out is None:
            _out = open(os.environ["APOLLO_SCALE_TRACE"], "a", buffering=1)  # noqa: SIM115
        _out.write(line)


def _wrap(owner: Any, name: str, before: Callable[..., None]) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before(*args, **kwargs)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _stamp_sqlite_lock() -> None:
    """BEGIN IMMEDIATE's wait for the write lock, and when the transaction ended."""
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.sqlite3 import base

    begin = getattr(base.DatabaseWrapper, "_start_transaction_under_autocommit")  # noqa: B009

    def start(self: Any) -> None:
        stamp("begin_wait")
        begin(self)
        stamp("begin_got")

    setattr(base.DatabaseWrapper, "_start_transaction_under_autocommit", start)  # noqa: B010
    for method in ("_commit", "_rollback"):
        original = getattr(BaseDatabaseWrapper, method)

        def ended(self: Any, _original: Any = original) -> Any:
            try:
                return _original(self)
            finally:
                stamp("end")

        setattr(BaseDatabaseWrapper, method, ended)


def run_worker(arguments: list[str]) -> None:
    """The worker, its steps stamped (in the worker's process)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")
    import django

    django.setup()
    from django.core.management import execute_from_command_line

    from deployments.engine import object_watch, rollout, verdicts, worker

    def dispatch(self: Any, event: Any) -> None:
        if self.kind == "Deployment" and rollout_complete_json(event.object):
            stamp("dispatch", event.object["metadata"]["name"])

    def absorb(self: Any, kind: str, payload: Any) -> None:
        if (
            kind == "event"
            and payload[0] == "Deployment"
            and rollout_complete_json(payload[1].object)
        ):
            stamp("take", self.name)

    def finish(self: Any, *_: Any) -> None:
        stamp("finish", self.follower.name if self.follower is not None else "")

    _wrap(object_watch._NamespaceObjects, "dispatch", dispatch)
    _wrap(rollout.Follower, "_absorb", absorb)
    _wrap(rollout.Follower, "_verdict", lambda self, *_: stamp("verdict", self.name))
    _wrap(worker.Run, "finish_with_snapshot", finish)
    commit = verdicts.commit

    def stamped_commit(*args: Any, **kwargs: Any) -> Any:
        stamp("commit_in")
        try:
            return commit(*args, **kwargs)
        finally:
            stamp("commit_out")

    verdicts.commit = stamped_commit
    _stamp_sqlite_lock()
    execute_from_command_line(["manage.py", *arguments])


def _stamped_kubesim(run_kubesim: Callable[..., Any]) -> Callable[..., Any]:
    """kubesim.testing.run_kubesim, with a listener on its store stamping completions."""

    @contextmanager
    def run(**kwargs: Any) -> Iterator[Any]:
        with run_kubesim(**kwargs) as sim:
            done: set[str] = set()

            def listener(rtype: Any, event: Any) -> None:
                name = event.obj["metadata"]["name"]
                if (
                    rtype.plural == "deployments"
                    and name not in done
                    and rollout_complete_json(event.obj)
                ):
                    done.add(name)
                    stamp("complete", name)

            sim.server.cluster.store.add_listener(listener)
            yield sim

    return run


class _Seen(dict[str, float]):
    """The bench's watch's completions (Completions.at), each stamped as it is recorded."""

    def __setitem__(self, name: str, value: float) -> None:
        stamp("seen", name)
        super().__setitem__(name, value)


def trace(rollouts: int) -> Path:
    """Run the bench with its steps stamped; the trace file."""
    import kubesim.testing
    from bench import common, scale_bench

    path = Path(tempfile.mkstemp(prefix="scale-trace-", suffix=".tsv")[1])
    os.environ["APOLLO_SCALE_TRACE"] = str(path)
    scale_bench.WORKER = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    common.write_result = lambda name, result: path  # (scale_bench imports it when it runs)

    class Completions(scale_bench.Completions):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.at = _Seen()

    scale_bench.Completions = Completions  # type: ignore[misc,assignment]
    kubesim.testing.run_kubesim = _stamped_kubesim(kubesim.testing.run_kubesim)
    import django

    django.setup()
    _stamp_sqlite_lock()
    scale_bench.main(rollouts)
    return path


def report(path: Path, top: int) -> None:
    rows = sorted(
        (float(t), pid, thread, what, name)
        for t, pid, thread, what, name in (
            line.rstrip("\n").split("\t") for line in path.read_text().splitlines()
        )
    )
    bench_pid = rows[0][1]
    at: dict[str, dict[str, float]] = defaultdict(dict)
    finishing: dict[tuple[str, str], str] = {}  # (pid, thread) -> the rollout it records
    begun: dict[tuple[str, str], float] = {}
    holding: dict[tuple[str, str], float] = {}
    held: dict[str, list[float]] = defaultdict(list)
    for t, pid, thread, what, name in rows:
        key = (pid, thread)
        rollout = finishing.get(key, "")
        if what in ("complete", "seen", "dispatch", "take", "verdict"):
            at[name].setdefault(what, t)
        elif what == "finish":
            finishing[key] = name
            at[name].setdefault(what, t)
        elif what in ("commit_in", "commit_out") and rollout:
            at[rollout].setdefault(what, t)
        elif what == "begin_wait":
            begun[key] = t
        elif what == "begin_got":
            if rollout and "commit_in" in at[rollout] and "commit_out" not in at[rollout]:
                at[rollout].setdefault("begin", (t - begun.get(key, t)) * 1000)
            holding[key] = t
        elif what == "end" and key in holding:
            who = "bench" if pid == bench_pid else "worker"
            held[f"{who} {thread.rstrip('0123456789').rstrip('_')}"].append(t - holding.pop(key))
    lags = []
    for name, steps in at.items():
        if "complete" in steps and "commit_out" in steps:
            base = steps["complete"]
            lag = {step: (steps[step] - base) * 1000 for step in STEPS if step in steps}
            lags.append((lag["commit_out"], name, lag, steps.get("begin")))
    lags.sort(reverse=True)
    print("ms after kubesim held the Deployment complete:")
    print("rollout  " + "  ".join(f"{step:>10}" for step in STEPS) + "  BEGIN waited")
    for _, name, lag, begin in lags[:top]:
        cells = "  ".join(f"{lag[s]:10.1f}" if s in lag else f"{'':>10}" for s in STEPS)
        print(f"{name:8} {cells}  {'' if begin is None else f'{begin:.1f}'}")
    for label, pick in (("median", statistics.median), ("max", max)):
        cells = "  ".join(
            f"{pick([lag[s] for _, _, lag, _ in lags if s in lag]):10.1f}" for s in STEPS
        )
        print(f"{label:8} {cells}")
    if held:
        print(
            "\nSQLite's write lock, held (from BEGIN's answer to COMMIT or ROLLBACK), by thread"
            " (the bench's include its set-up, the services and versions; a one-statement write"
            " outside a transaction is not counted):"
        )
        for who, times in sorted(held.items(), key=lambda item: -sum(item[1])):
            print(
                f"  {who:24} {len(times):4d} transactions, {sum(times) * 1000:7.0f} ms in all, "
                f"median {statistics.median(times) * 1000:5.1f}, max {max(times) * 1000:6.1f}"
            )
    print(f"\n(trace: {path})")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        run_worker(sys.argv[2:])
    else:
        import argparse

        parser = argparse.ArgumentParser(description="The scale bench, each step stamped")
        parser.add_argument("--rollouts", type=int, default=100)
        parser.add_argument("--top", type=int, default=10)
        arguments = parser.parse_args()
        report(trace(arguments.rollouts), arguments.top)
