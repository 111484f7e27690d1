"""Environment snapshots: which version of every service (and group) runs, read from the cluster."""

from typing import Any

from deployments.rendering import LABEL_GROUP, LABEL_SERVICE, LABEL_SHA, MANAGED_BY
from environments import kube
from environments.models import Environment


def take_snapshot(
    environment: Environment, *, deployments: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """deployments: the namespace's Deployments as a watch of this worker keeps them (no list
    is asked for then)."""
    if deployments is None:
        deployments, _ = kube.list_objects(
            environment.cluster,
            "Deployment",
            environment.namespace,
            label_selector=f"{MANAGED_BY}=apollo",
        )
    services: dict[str, Any] = {}
    for item in deployments:
        labels = (item.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY) != "apollo":
            continue
        template_labels = (
            ((item.get("spec") or {}).get("template") or {}).get("metadata") or {}
        ).get("labels") or {}
        service = labels.get(LABEL_SERVICE)
        if not service:
            continue
        key = f"{service}/{labels[LABEL_GROUP]}" if labels.get(LABEL_GROUP) else service
        status = item.get("status") or {}
        services[key] = {
            "service": service,
            "group": labels.get(LABEL_GROUP, ""),
            "sha": template_labels.get(LABEL_SHA, labels.get(LABEL_SHA, "")),
            "replicas": int((item.get("spec") or {}).get("replicas", 1)),
            "ready": int(status.get("readyReplicas") or 0),
        }
    return {"namespace": environment.namespace, "services": dict(sorted(services.items()))}
