"""Pod status bookkeeping: container states and the derived phase and conditions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubesim import resources as R
from kubesim.cluster import Cluster
from kubesim.meta import deep_copy, iso, now_iso

JSON = dict[str, Any]


def init_status(pod: JSON, host_ip: str, pod_ip: str, now: float) -> JSON:
    stamp = iso(now)
    statuses = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}},
            "lastState": {},
        }
        for c in pod["spec"].get("containers", [])
    ]
    return {
        "phase": "Pending",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": stamp},
            {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
            {
                "type": "Ready",
                "status": "False",
                "lastTransitionTime": stamp,
                "reason": "ContainersNotReady",
                "message": "",
            },
            {
                "type": "ContainersReady",
                "status": "False",
                "lastTransitionTime": stamp,
                "reason": "ContainersNotReady",
                "message": "",
            },
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": stamp,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    }


def set_container_state(
    pod: JSON,
    name: str,
    state: JSON | None,
    *,
    ready: bool,
    started: bool | None = None,
    image: str | None = None,
    image_id: str | None = None,
    container_id: str | None = None,
) -> None:
    for status in pod["status"].get("containerStatuses", []):
        if status["name"] != name:
            continue
        if state is not None:
            status["state"] = state
        status["ready"] = ready
        if started is not None:
            status["started"] = started
        if image is not None:
            status["image"] = image
        if image_id is not None:
            status["imageID"] = image_id
        if container_id is not None:
            status["containerID"] = container_id
    refresh_conditions(pod)


def _set_condition(pod: JSON, type_: str, ok: bool, reason: str = "", message: str = "") -> None:
    for cond in pod["status"]["conditions"]:
        if cond["type"] != type_:
            continue
        status = "True" if ok else "False"
        if cond["status"] != status:
            cond["lastTransitionTime"] = now_iso()
        cond["status"] = status
        if ok:
            cond.pop("reason", None)
            cond.pop("message", None)
        else:
            cond["reason"], cond["message"] = reason, message


def refresh_conditions(pod: JSON) -> None:
    statuses = pod["status"].get("containerStatuses", [])
    not_ready = [s["name"] for s in statuses if not s.get("ready")]
    message = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
    _set_condition(pod, "ContainersReady", not not_ready, "ContainersNotReady", message)
    _set_condition(pod, "Ready", not not_ready, "ContainersNotReady", message)
    running = [s for s in statuses if "running" in s.get("state", {}) or s.get("restartCount")]
    if statuses and len(running) == len(statuses):
        pod["status"]["phase"] = "Running"


def write_pod(
    cluster: Cluster,
    key: tuple[str, str, str],
    change: Callable[[JSON], None],
    *,
    spec_change: bool = False,
) -> JSON | None:
    """Read-modify-write a pod's status; a no-op when the pod is gone or was replaced."""
    namespace, name, uid = key
    current = cluster.store.get(R.PODS, namespace, name)
    if current is None or current["metadata"]["uid"] != uid:
        return None
    updated = {
        **current,
        "metadata": dict(current["metadata"]),
        "status": deep_copy(current.get("status") or {}),
    }
    if spec_change:
        updated["spec"] = deep_copy(current["spec"])
    change(updated)
    return cluster.store.put(R.PODS, updated)
