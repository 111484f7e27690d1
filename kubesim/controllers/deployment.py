"""Deployment controller: RollingUpdate (maxSurge/maxUnavailable) and Recreate via ReplicaSets.

The algorithms follow kube-controller-manager's deployment controller (rolling.go, sync.go,
progress.go) closely enough that rollout bounds, revisions and conditions behave the same.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from kubesim import resources as R
from kubesim.cluster import Cluster
from kubesim.controllers.base import Controller, controller_owner
from kubesim.controllers.status import compute_status
from kubesim.meta import controller_ref, deep_copy, safe_encode
from kubesim.store import WatchEvent

JSON = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def template_hash(template: JSON) -> str:
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return safe_encode(int(hashlib.sha256(text.encode()).hexdigest()[:15], 16), 10)


def _without_hash(template: JSON) -> JSON:
    clean = deep_copy(template)
    labels = clean.get("metadata", {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return clean


def resolve_bound(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString (3 or "25%") against `total`, rounding like intstr's scaled value."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value or 0)


def surge_and_unavailable(deployment: JSON) -> tuple[int, int]:
    spec = deployment["spec"]
    replicas = int(spec.get("replicas", 1))
    if spec.get("strategy", {}).get("type") != "RollingUpdate":
        return 0, 0
    rolling = spec["strategy"].get("rollingUpdate") or {}
    surge = resolve_bound(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = resolve_bound(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # the API forbids both zero; the controller guards anyway
    return surge, min(unavailable, replicas)


def revision_of(rs: JSON) -> int:
    try:
        return int(rs["metadata"].get("annotations", {}).get(REVISION, "0"))
    except ValueError:
        return 0


def spec_replicas(rs: JSON) -> int:
    return int(rs.get("spec", {}).get("replicas", 0))


def available_of(rs: JSON) -> int:
    return int(rs.get("status", {}).get("availableReplicas", 0))


class DeploymentController(Controller):
    name = "deployment-controller"

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        cluster.store.add_listener(self._on_event)

    def _on_event(self, rtype: R.ResourceType, event: WatchEvent) -> None:
        if rtype is R.DEPLOYMENTS:
            meta = event.obj["metadata"]
            self.enqueue((meta["namespace"], meta["name"]))
        elif rtype is R.REPLICASETS:
            owner = controller_owner(event.obj, "Deployment")
            if owner:
                self.enqueue((event.obj["metadata"]["namespace"], owner))
        elif rtype is R.PODS and event.type == "DELETED":
            # Recreate waits for old pods to be gone, which no ReplicaSet event announces.
            self._enqueue_pod_owner(event.obj)

    def _enqueue_pod_owner(self, pod: JSON) -> None:
        rs_name = controller_owner(pod, "ReplicaSet")
        if not rs_name:
            return
        rs = self.store.get(R.REPLICASETS, pod["metadata"]["namespace"], rs_name)
        owner = controller_owner(rs, "Deployment") if rs else None
        if owner:
            self.enqueue((pod["metadata"]["namespace"], owner))

    # -- sync ------------------------------------------------------------------------------------

    def owned_replicasets(self, deployment: JSON) -> list[JSON]:
        result = []
        for plural, namespace, name in self.store.dependents(deployment["metadata"]["uid"]):
            if plural == "replicasets":
                rs = self.store.get(R.REPLICASETS, namespace, name)
                if rs is not None:
                    result.append(rs)
        return sorted(
            result, key=lambda rs: (rs["metadata"]["creationTimestamp"], rs["metadata"]["name"])
        )

    def sync(self, namespace: str, name: str) -> None:
        deployment = self.store.get(R.DEPLOYMENTS, namespace, name)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return
        rss = self.owned_replicasets(deployment)
        wanted = _without_hash(deployment["spec"]["template"])
        new_rs = next((rs for rs in rss if _without_hash(rs["spec"]["template"]) == wanted), None)
        old_rss = [rs for rs in rss if rs is not new_rs]
        created = False
        if not deployment["spec"].get("paused"):
            if new_rs is None:
                new_rs = self._create_replicaset(deployment, old_rss)
                created = True
            else:
                new_rs = self._bump_revision(new_rs, old_rss)
            if deployment["spec"].get("strategy", {}).get("type") == "Recreate":
                new_rs, old_rss = self._recreate(deployment, new_rs, old_rss)
            else:
                new_rs, old_rss = self._rolling(deployment, new_rs, old_rss)
            self._cleanup(deployment, old_rss)
        self._write_status(deployment, new_rs, old_rss, created)

    def _create_replicaset(self, deployment: JSON, old_rss: list[JSON]) -> JSON:
        meta = deployment["metadata"]
        template = deep_copy(deployment["spec"]["template"])
        pod_hash = template_hash(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = deep_copy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        revision = max([revision_of(rs) for rs in old_rss] + [0]) + 1
        surge, _ = surge_and_unavailable(deployment)
        replicas = int(deployment["spec"].get("replicas", 1))
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    REVISION: str(revision),
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                },
                "ownerReferences": [controller_ref(deployment, "Deployment", "apps/v1")],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": deployment["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }
        return self.cluster.api.create(
            R.REPLICASETS, meta["namespace"], body, manager="kube-controller-manager"
        )

    def _bump_revision(self, new_rs: JSON, old_rss: list[JSON]) -> JSON:
        """A rollback to an older template makes that ReplicaSet the newest revision again."""
        highest = max([revision_of(rs) for rs in old_rss] + [0])
        if revision_of(new_rs) > highest:
            return new_rs
        updated = deep_copy(new_rs)
        updated["metadata"].setdefault("annotations", {})[REVISION] = str(highest + 1)
        return self.store.put(R.REPLICASETS, updated)

    def _scale(self, deployment: JSON, rs: JSON, replicas: int) -> JSON:
        current = spec_replicas(rs)
        if current == replicas:
            return rs
        updated = deep_copy(rs)
        updated["spec"]["replicas"] = replicas
        surge, _ = surge_and_unavailable(deployment)
        desired = int(deployment["spec"].get("replicas", 1))
        annotations = updated["metadata"].setdefault("annotations", {})
        annotations["deployment.kubernetes.io/desired-replicas"] = str(desired)
        annotations["deployment.kubernetes.io/max-replicas"] = str(desired + surge)
        direction = "up" if replicas > current else "down"
        self.cluster.events.record(
            deployment,
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {current} to {replicas}",
            component="deployment-controller",
        )
        return self.cluster.api.update(
            R.REPLICASETS,
            rs["metadata"]["namespace"],
            rs["metadata"]["name"],
            updated,
            manager="kube-controller-manager",
        )

    # -- strategies --------------------------------------------------------------------------

    def _recreate(
        self, deployment: JSON, new_rs: JSON, old_rss: list[JSON]
    ) -> tuple[JSON, list[JSON]]:
        old_rss = [self._scale(deployment, rs, 0) for rs in old_rss]
        old_pods = [p for rs in old_rss for p in self._pods_of(rs)]
        if not old_pods:
            new_rs = self._scale(deployment, new_rs, int(deployment["spec"].get("replicas", 1)))
        return new_rs, old_rss

    def _pods_of(self, rs: JSON) -> list[JSON]:
        return [
            self.store.get(R.PODS, ns, name) or {}
            for plural, ns, name in self.store.dependents(rs["metadata"]["uid"])
            if plural == "pods"
        ]

    def _rolling(
        self, deployment: JSON, new_rs: JSON, old_rss: list[JSON]
    ) -> tuple[JSON, list[JSON]]:
        replicas = int(deployment["spec"].get("replicas", 1))
        surge, unavailable = surge_and_unavailable(deployment)
        all_rss = [*old_rss, new_rs]
        # Scale up the new ReplicaSet within maxSurge.
        total = sum(spec_replicas(rs) for rs in all_rss)
        new_count = spec_replicas(new_rs)
        if spec_replicas(new_rs) > replicas:
            new_count = replicas
        elif total < replicas + surge:
            new_count = spec_replicas(new_rs) + min(
                replicas + surge - total, replicas - spec_replicas(new_rs)
            )
        new_rs = self._scale(deployment, new_rs, new_count)
        old_rss = self._scale_down_old(deployment, new_rs, old_rss, replicas, unavailable)
        return new_rs, old_rss

    def _scale_down_old(
        self, deployment: JSON, new_rs: JSON, old_rss: list[JSON], replicas: int, unavailable: int
    ) -> list[JSON]:
        if sum(spec_replicas(rs) for rs in old_rss) == 0:
            return old_rss
        all_count = sum(spec_replicas(rs) for rs in [*old_rss, new_rs])
        min_available = replicas - unavailable
        new_unavailable = spec_replicas(new_rs) - available_of(new_rs)
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return old_rss
        # First remove old pods that are not available anyway (cleanupUnhealthyReplicas).
        result, cleaned = [], 0
        for rs in old_rss:
            unhealthy = spec_replicas(rs) - available_of(rs)
            step = min(max_scaled_down - cleaned, unhealthy) if unhealthy > 0 else 0
            if step > 0:
                rs = self._scale(deployment, rs, spec_replicas(rs) - step)
                cleaned += step
            result.append(rs)
        # Then available ones, oldest first, keeping minAvailable
        # (scaleDownOldReplicaSetsForRollingUpdate).
        available = sum(available_of(rs) for rs in [*result, new_rs])
        budget = available - min_available
        final = []
        for rs in result:
            step = min(spec_replicas(rs), budget) if budget > 0 else 0
            if step > 0:
                rs = self._scale(deployment, rs, spec_replicas(rs) - step)
                budget -= step
            final.append(rs)
        return final

    def _cleanup(self, deployment: JSON, old_rss: list[JSON]) -> None:
        limit = int(deployment["spec"].get("revisionHistoryLimit", 10))
        idle = [
            rs
            for rs in old_rss
            if spec_replicas(rs) == 0 and int(rs.get("status", {}).get("replicas", 0)) == 0
        ]
        idle.sort(key=revision_of)
        for rs in idle[: max(len(idle) - limit, 0)]:
            self.store.remove(R.REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    # -- status ------------------------------------------------------------------------------

    def _write_status(
        self, deployment: JSON, new_rs: JSON | None, old_rss: list[JSON], created: bool
    ) -> None:
        current = self.store.get(
            R.DEPLOYMENTS, deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        )
        if current is None:
            return
        status, recheck = compute_status(current, new_rs, old_rss, created, time.time())
        if recheck is not None:
            meta = current["metadata"]
            self.enqueue_after((meta["namespace"], meta["name"]), recheck)
        if status != current.get("status"):
            self.store.put(
                R.DEPLOYMENTS, {**current, "status": status, "metadata": dict(current["metadata"])}
            )
