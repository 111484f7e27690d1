"""Deployment status and conditions, following progress.go / sync.go of the real controller."""

from __future__ import annotations

from typing import Any

from kubesim.meta import iso, parse_iso

JSON = dict[str, Any]


def _condition(type_: str, status: str, reason: str, message: str, now: float) -> JSON:
    stamp = iso(now)
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def _set(conditions: list[JSON], new: JSON) -> list[JSON]:
    """SetDeploymentCondition: same status and reason keeps the old one, as the real one does."""
    current = next((c for c in conditions if c["type"] == new["type"]), None)
    if (
        current is not None
        and current["status"] == new["status"]
        and current["reason"] == new["reason"]
    ):
        return conditions
    if current is not None and current["status"] == new["status"]:
        new = {**new, "lastTransitionTime": current["lastTransitionTime"]}
    return [c for c in conditions if c["type"] != new["type"]] + [new]


def _counts(new_rs: JSON | None, old_rss: list[JSON]) -> JSON:
    all_rss = [*old_rss, new_rs] if new_rs else old_rss

    def total(field: str) -> int:
        return sum(int(rs.get("status", {}).get(field, 0)) for rs in all_rss)

    return {
        "replicas": total("replicas"),
        "updatedReplicas": int((new_rs or {}).get("status", {}).get("replicas", 0)),
        "readyReplicas": total("readyReplicas"),
        "availableReplicas": total("availableReplicas"),
    }


def _progressing(old: JSON, new: JSON) -> bool:
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = new["replicas"] - new["updatedReplicas"]
    return bool(
        new["updatedReplicas"] > old.get("updatedReplicas", 0)
        or new_old < old_old
        or new["readyReplicas"] > old.get("readyReplicas", 0)
        or new["availableReplicas"] > old.get("availableReplicas", 0)
    )


def compute_status(
    deployment: JSON, new_rs: JSON | None, old_rss: list[JSON], created: bool, now: float
) -> tuple[JSON, float | None]:
    """Return the new status and, if the progress deadline may still pass, when to look again."""
    from kubesim.controllers.deployment import surge_and_unavailable

    spec = deployment["spec"]
    desired = int(spec.get("replicas", 1))
    old_status = deployment.get("status") or {}
    status: JSON = {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        **_counts(new_rs, old_rss),
    }
    unavailable = max(desired - status["availableReplicas"], 0)
    if unavailable:
        status["unavailableReplicas"] = unavailable
    conditions: list[JSON] = list(old_status.get("conditions") or [])
    _, max_unavailable = surge_and_unavailable(deployment)
    if status["availableReplicas"] >= desired - max_unavailable:
        conditions = _set(
            conditions,
            _condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
            ),
        )
    else:
        conditions = _set(
            conditions,
            _condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
            ),
        )
    recheck = None
    if new_rs is not None and not spec.get("paused"):
        conditions, recheck = _progress(
            deployment, status, old_status, conditions, new_rs, created, now
        )
    status["conditions"] = conditions
    return status, recheck


def _progress(
    deployment: JSON,
    status: JSON,
    old_status: JSON,
    conditions: list[JSON],
    new_rs: JSON,
    created: bool,
    now: float,
) -> tuple[list[JSON], float | None]:
    name = new_rs["metadata"]["name"]
    desired = int(deployment["spec"].get("replicas", 1))
    deadline = deployment["spec"].get("progressDeadlineSeconds")
    if created:
        conditions = _set(
            conditions,
            _condition(
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{name}"',
                now,
            ),
        )
    elif not any(c["type"] == "Progressing" for c in conditions):
        conditions = _set(
            conditions,
            _condition(
                "Progressing", "True", "FoundNewReplicaSet", f'Found new replica set "{name}"', now
            ),
        )
    current = next(c for c in conditions if c["type"] == "Progressing")
    complete = (
        status["updatedReplicas"] == desired
        and status["replicas"] == desired
        and status["availableReplicas"] == desired
        and status["observedGeneration"] >= deployment["metadata"].get("generation", 1)
    )
    if complete:
        done = _condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{name}" has successfully progressed.',
            now,
        )
        return _set(conditions, done), None
    if _progressing(old_status, status):
        updated = _condition(
            "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.', now
        )
        if current["status"] == "True":
            updated["lastTransitionTime"] = current["lastTransitionTime"]
        conditions = [c for c in conditions if c["type"] != "Progressing"] + [updated]
        return conditions, float(deadline) + 0.5 if deadline is not None else None
    if deadline is None or current["reason"] == "NewReplicaSetAvailable":
        return conditions, None
    if current["reason"] == "ProgressDeadlineExceeded":
        return conditions, None
    since = parse_iso(current["lastUpdateTime"])
    if since + float(deadline) < now:
        timed_out = _condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{name}" has timed out progressing.',
            now,
        )
        return _set(conditions, timed_out), None
    return conditions, since + float(deadline) - now + 0.5
