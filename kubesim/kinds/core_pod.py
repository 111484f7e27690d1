"""Pods (core/v1): defaults of a pod spec (shared by the workloads' templates), containers'
validation, the fields an update may not change, graceful deletion and kubectl's columns."""

from __future__ import annotations

from kubesim import resources as R
from kubesim.kinds.strategy import JSON, STRING, Cause, Row, Strategy, age
from kubesim.meta import human_age, is_dns_label, parse_iso

# The one change the real pod strategy allows besides images, tolerations and deadlines.
_POD_UPDATE_FORBIDDEN = (
    "Forbidden: pod updates may not change fields other than "
    "`spec.containers[*].image`, `spec.initContainers[*].image`, "
    "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to "
    "existing tolerations), `spec.terminationGracePeriodSeconds` (allow it "
    "to be set to 1 if it was previously negative)"
)


def _image_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def default_pod_spec(spec: JSON) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("imagePullPolicy", _image_pull_policy(str(container.get("image", ""))))
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def validate_containers(spec: JSON, path: str) -> list[Cause]:
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [(f"{path}.containers", "FieldValueRequired", "Required value")]
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}.containers[{index}]"
        if not isinstance(container, dict):
            causes.append((where, "FieldValueInvalid", "Invalid value: must be an object"))
            continue
        name = container.get("name")
        if not name:
            causes.append((f"{where}.name", "FieldValueRequired", "Required value"))
        elif not is_dns_label(str(name)):
            causes.append(
                (
                    f"{where}.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{name}": a lowercase '
                    "RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                )
            )
        elif name in seen:
            causes.append((f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
        seen.add(str(name))
        if not container.get("image"):
            causes.append((f"{where}.image", "FieldValueRequired", "Required value"))
    return causes


def pod_status_reason(pod: JSON) -> str:
    """The STATUS column of `kubectl get pods`."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


class PodStrategy(Strategy):
    resource = R.PODS
    return_deleted_object = True
    graceful_deletion = True
    subresource_kinds = {
        "exec": "PodExecOptions",
        "attach": "PodAttachOptions",
        "portforward": "PodPortForwardOptions",
        "proxy": "PodProxyOptions",
    }
    columns = (
        ("Name", STRING, 0),
        ("Ready", STRING, 0),
        ("Status", STRING, 0),
        ("Restarts", STRING, 0),
        ("Age", STRING, 0),
        ("IP", STRING, 1),
        ("Node", STRING, 1),
        ("Nominated Node", STRING, 1),
        ("Readiness Gates", STRING, 1),
    )

    def default(self, obj: JSON) -> None:
        default_pod_spec(obj.setdefault("spec", {}))
        obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})

    def validate(self, obj: JSON) -> list[Cause]:
        return validate_containers(obj.get("spec") or {}, "spec")

    def validate_update(self, old: JSON, new: JSON) -> list[Cause]:
        old_spec = {k: v for k, v in old.get("spec", {}).items() if k not in ("containers",)}
        new_spec = {k: v for k, v in new.get("spec", {}).items() if k not in ("containers",)}
        old_images = [c.get("name") for c in old.get("spec", {}).get("containers", [])]
        new_images = [c.get("name") for c in new.get("spec", {}).get("containers", [])]
        if old_spec != new_spec or old_images != new_images:
            return [("spec", "FieldValueForbidden", _POD_UPDATE_FORBIDDEN)]
        return []

    def deletion_grace(self, obj: JSON, requested: int | None) -> int:
        # An unscheduled pod has no kubelet to stop it: it goes at once.
        if not obj.get("spec", {}).get("nodeName"):
            return 0
        if requested is not None:
            return requested
        return int(obj.get("spec", {}).get("terminationGracePeriodSeconds", 30))

    def row(self, obj: JSON, now: float) -> Row:
        statuses = (obj.get("status") or {}).get("containerStatuses") or []
        total = len(obj.get("spec", {}).get("containers") or [])
        ready = sum(1 for cs in statuses if cs.get("ready"))
        restarts = sum(int(cs.get("restartCount", 0)) for cs in statuses)
        last = [cs.get("lastState", {}).get("terminated", {}).get("finishedAt") for cs in statuses]
        finished = [parse_iso(t) for t in last if t]
        restart_text = (
            f"{restarts} ({human_age(max(finished), now)} ago)" if finished else str(restarts)
        )
        status = obj.get("status") or {}
        return [
            obj["metadata"]["name"],
            f"{ready}/{total}",
            pod_status_reason(obj),
            restart_text,
            age(obj, now),
            status.get("podIP") or "<none>",
            obj.get("spec", {}).get("nodeName") or "<none>",
            "<none>",
            "<none>",
        ]
