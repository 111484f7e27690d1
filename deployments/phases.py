"""A deployment's timeline summarised in phases for people: requested, applied, rolling out
(n of m pods ready), verdict; with a progress figure and the elapsed time.

Pure: computed from the deployment's own fields and its recorded timeline (the worker's
"rollout" notes carry the replica counts, `deployments.engine.health`), so the page and its
live refresh show the same thing without asking the cluster.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deployments.status import Status

READY = re.compile(r"(\d+)/(\d+) ready")
LABELS = dict(Status.choices)


def status_label(code: str) -> str:
    """The readable name of a status code ("PENDING_CANCELLATION" -> "Pending cancellation"),
    the one place people's pages, batch summaries and live updates take it from; an unknown
    code is shown as given."""
    return LABELS.get(str(code), str(code))


@dataclass(frozen=True)
class Phase:
    name: str
    state: str  # done, current, pending, failed, skipped
    detail: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class Summary:
    phases: list[Phase]
    percent: int
    status_label: str
    elapsed: str
    finished: bool


def _pods(timeline: list[dict[str, Any]]) -> tuple[int, int] | None:
    """The last (ready, desired) the rollout notes reported."""
    for entry in reversed(timeline):
        if entry.get("source") == "rollout":
            found = READY.search(str(entry.get("message", "")))
            if found:
                return int(found.group(1)), int(found.group(2))
    return None


def elapsed_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def summarise(deployment: Any, now: datetime) -> Summary:
    status = Status(deployment.status)
    timeline = list(deployment.timeline or [])
    pods = _pods(timeline)
    terminal = status.is_terminal
    applied = deployment.applied_at is not None
    requested = Phase(
        "Requested", "done", f"by {deployment.deployed_by.get_username()}", deployment.created_at
    )
    if applied:
        apply = Phase("Applied", "done", "manifests sent to the cluster", deployment.applied_at)
    elif terminal:
        apply = Phase("Applied", "skipped", "nothing was applied")
    else:
        apply = Phase("Applied", "current", "waiting for a worker to apply the manifests")
    ready, desired = pods or (0, 0)
    pods_text = f"{ready} of {desired} pods ready" if pods else "no pod counted yet"
    if not applied:
        rollout = Phase(
            "Rolling out", "skipped" if terminal else "pending", pods_text if pods else ""
        )
    elif terminal:
        rollout = Phase("Rolling out", "done" if status == Status.DONE else "failed", pods_text)
    else:
        rollout = Phase("Rolling out", "current", pods_text)
    verdict = _verdict(deployment, status)
    percent = 100 if terminal else 10 + (20 if applied else 0)
    if applied and not terminal and desired:
        percent += int(70 * min(ready, desired) / desired)
    end = deployment.finished_at if terminal and deployment.finished_at else now
    return Summary(
        phases=[requested, apply, rollout, verdict],
        percent=min(percent, 100),
        status_label=status_label(status),
        elapsed=elapsed_text(max(0.0, (end - deployment.created_at).total_seconds())),
        finished=terminal,
    )


def _verdict(deployment: Any, status: Status) -> Phase:
    reason = deployment.status_reason or ""
    if status == Status.DONE:
        return Phase("Verdict", "done", reason or "healthy", deployment.finished_at)
    if status in (Status.FAILED, Status.CANCELED):
        return Phase(
            "Verdict", "failed", f"{LABELS[status]}: {reason}".rstrip(": "), deployment.finished_at
        )
    if status in (Status.PENDING_CANCELLATION, Status.CANCELING):
        return Phase("Verdict", "current", f"{LABELS[status]}: rolling back")
    return Phase("Verdict", "pending", "healthy or failed, once the rollout settles")
