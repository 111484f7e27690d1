"""Rollout health: how a deployment becomes DONE or FAILED (product brief, "Rollout health").

A pure function of what the cluster reports, so every rule is unit-tested without a cluster.
"""

from dataclasses import dataclass
from typing import Any, Literal

Obj = dict[str, Any]
PULL_FAILURES = {"ImagePullBackOff", "ErrImagePull"}
CONFIG_FAILURES = {"InvalidImageName", "CreateContainerConfigError"}
CRASH_LOOP_RESTARTS = 3


@dataclass(frozen=True)
class Verdict:
    state: Literal["progressing", "done", "failed"]
    reason: str
    # For a crash loop: which pod and container, so the worker can fetch its last log lines.
    pod: str = ""
    container: str = ""


def assess(
    deployment: Obj, new_pods: list[Obj], *, crash_restarts: int = CRASH_LOOP_RESTARTS
) -> Verdict:
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return Verdict(
            "progressing", f"waiting for the controller to observe generation {generation}"
        )
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        detail = progressing.get("message") or "the rollout made no progress in time"
        return Verdict("failed", f"progress deadline exceeded: {detail}")
    pod_failure = _pod_failure(new_pods, crash_restarts)
    if pod_failure is not None:
        return pod_failure
    desired = int((deployment.get("spec") or {}).get("replicas", 1))
    counts = {
        key: int(status.get(key) or 0)
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    }
    available = (conditions.get("Available") or {}).get("status") == "True"
    summary = (
        f"{counts['updatedReplicas']}/{desired} updated, "
        f"{counts['readyReplicas']}/{desired} ready, "
        f"{counts['availableReplicas']}/{desired} available"
    )
    old = counts["replicas"] - counts["updatedReplicas"]
    if old > 0:
        summary += f", {old} old replica(s) remaining"
    if (
        counts["updatedReplicas"] >= desired
        and old <= 0
        and counts["availableReplicas"] >= desired
        and counts["readyReplicas"] >= desired
        and available
    ):
        return Verdict("done", f"rollout complete: {summary}")
    return Verdict("progressing", summary)


def _pod_failure(pods: list[Obj], crash_restarts: int) -> Verdict | None:
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "")
        spec_images = {
            c.get("name"): c.get("image")
            for c in ((pod.get("spec") or {}).get("containers") or [])
            + ((pod.get("spec") or {}).get("initContainers") or [])
        }
        status = pod.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (
            status.get("containerStatuses") or []
        ):
            verdict = _container_failure(name, cs, spec_images, crash_restarts)
            if verdict is not None:
                return verdict
    return None


def _container_failure(
    pod: str, cs: Obj, spec_images: dict[Any, Any], crash_restarts: int
) -> Verdict | None:
    container = str(cs.get("name", ""))
    waiting = ((cs.get("state") or {}).get("waiting")) or {}
    reason = waiting.get("reason")
    image = spec_images.get(container) or cs.get("image", "")
    if reason in PULL_FAILURES:
        return Verdict("failed", f"image {image} not found ({reason} in pod {pod})", pod, container)
    if reason in CONFIG_FAILURES:
        message = waiting.get("message") or ""
        return Verdict("failed", f"{reason} in pod {pod}: {message}".rstrip(": "), pod, container)
    restarts = int(cs.get("restartCount") or 0)
    if reason == "CrashLoopBackOff" and restarts >= crash_restarts:
        return Verdict(
            "failed",
            f"container {container} of pod {pod} is crash-looping ({restarts} restarts)",
            pod,
            container,
        )
    return None
