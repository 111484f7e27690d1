"""ReplicaSet controller: keeps the number of active pods equal to spec.replicas."""

from __future__ import annotations

import time
from typing import Any

from kubesim import resources as R
from kubesim.api import DeleteOptions
from kubesim.cluster import Cluster
from kubesim.controllers.base import Controller, controller_owner
from kubesim.errors import ApiError
from kubesim.meta import controller_ref, deep_copy, parse_iso, random_suffix
from kubesim.store import WatchEvent

JSON = dict[str, Any]


def is_active(pod: JSON) -> bool:
    phase = pod.get("status", {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


def pod_ready_since(pod: JSON) -> float | None:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return parse_iso(cond.get("lastTransitionTime") or "1970-01-01T00:00:00Z")
    return None


def _delete_rank(pod: JSON) -> tuple[int, float]:
    """Pods to delete first: unscheduled, pending, not ready; then the newest."""
    status = pod.get("status", {})
    if not pod.get("spec", {}).get("nodeName"):
        rank = 0
    elif status.get("phase") == "Pending":
        rank = 1
    elif pod_ready_since(pod) is None:
        rank = 2
    else:
        rank = 3
    return rank, -parse_iso(pod["metadata"].get("creationTimestamp", "1970-01-01T00:00:00Z"))


class ReplicaSetController(Controller):
    name = "replicaset-controller"

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        cluster.store.add_listener(self._on_event)

    def _on_event(self, rtype: R.ResourceType, event: WatchEvent) -> None:
        if rtype is R.REPLICASETS:
            meta = event.obj["metadata"]
            self.enqueue((meta["namespace"], meta["name"]))
        elif rtype is R.PODS:
            owner = controller_owner(event.obj, "ReplicaSet")
            if owner:
                self.enqueue((event.obj["metadata"]["namespace"], owner))

    def owned_pods(self, rs: JSON) -> list[JSON]:
        pods = []
        for plural, namespace, name in self.store.dependents(rs["metadata"]["uid"]):
            if plural == "pods":
                pod = self.store.get(R.PODS, namespace, name)
                if pod is not None:
                    pods.append(pod)
        return pods

    def order(self, batch: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Scale-downs first, so a rollout never briefly runs more pods than maxSurge allows."""

        def surplus(key: tuple[str, str]) -> int:
            rs = self.store.get(R.REPLICASETS, *key)
            if rs is None:
                return 0
            active = sum(1 for p in self.owned_pods(rs) if is_active(p))
            return active - int(rs.get("spec", {}).get("replicas", 1))

        return sorted(batch, key=lambda key: -surplus(key))

    def sync(self, namespace: str, name: str) -> None:
        rs = self.store.get(R.REPLICASETS, namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        pods = self.owned_pods(rs)
        active = [p for p in pods if is_active(p)]
        wanted = int(rs.get("spec", {}).get("replicas", 1))
        if len(active) < wanted:
            for _ in range(wanted - len(active)):
                active.append(self._create_pod(rs))
        elif len(active) > wanted:
            doomed = sorted(active, key=_delete_rank)[: len(active) - wanted]
            for pod in doomed:
                self._delete_pod(rs, pod)
            active = [p for p in active if p not in doomed]
        self._update_status(rs, active)

    def _create_pod(self, rs: JSON) -> JSON:
        template = deep_copy(rs["spec"]["template"])
        meta = template.setdefault("metadata", {})
        name = f"{rs['metadata']['name']}-{random_suffix()}"
        meta.update(
            {
                "name": name,
                "namespace": rs["metadata"]["namespace"],
                "ownerReferences": [controller_ref(rs, "ReplicaSet", "apps/v1")],
            }
        )
        meta.pop("generateName", None)
        body = {"apiVersion": "v1", "kind": "Pod", **template}
        pod = self.cluster.api.create(
            R.PODS, rs["metadata"]["namespace"], body, manager="kube-controller-manager"
        )
        self.cluster.events.record(
            rs, "SuccessfulCreate", f"Created pod: {name}", component="replicaset-controller"
        )
        return pod

    def _delete_pod(self, rs: JSON, pod: JSON) -> None:
        meta = pod["metadata"]
        try:
            self.cluster.api.delete(R.PODS, meta["namespace"], meta["name"], DeleteOptions())
        except ApiError:
            return
        self.cluster.events.record(
            rs,
            "SuccessfulDelete",
            f"Deleted pod: {meta['name']}",
            component="replicaset-controller",
        )

    def _update_status(self, rs: JSON, active: list[JSON]) -> None:
        min_ready = int(rs.get("spec", {}).get("minReadySeconds", 0))
        now = time.time()
        ready = [p for p in active if pod_ready_since(p) is not None]
        available = 0
        for pod in ready:
            since = pod_ready_since(pod) or now
            if since + min_ready <= now:
                available += 1
            else:
                meta = rs["metadata"]
                self.enqueue_after(
                    (meta["namespace"], meta["name"]), since + min_ready - now + 0.05
                )
        selector_labels = rs["spec"].get("template", {}).get("metadata", {}).get("labels") or {}
        labeled = [
            p
            for p in active
            if all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector_labels.items())
        ]
        status: JSON = {
            "replicas": len(active),
            "fullyLabeledReplicas": len(labeled),
            "readyReplicas": len(ready),
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if status != rs.get("status"):
            current = self.store.get(
                R.REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"]
            )
            if current is None:
                return
            self.store.put(
                R.REPLICASETS, {**current, "status": status, "metadata": dict(current["metadata"])}
            )
