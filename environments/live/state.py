"""The live status of an environment as plain data: what the cluster runs, joined with what
Apollo recorded (who deployed which version, and whether the cluster drifted from it).

`build_status` is pure (cluster objects and records in, JSON-ready dict out); `load_records`
reads the database with a fixed number of queries, whatever the number of services.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from deployments.models import LAST_DONE_ORDER, DeployableVersion, Deployment, Group
from deployments.status import Status
from environments.kube.labels import LABEL_GROUP, LABEL_SERVICE, LABEL_SHA
from environments.live.template_drift import pod_template, template_drift
from environments.models import Environment
from environments.owners import pod_targets

Obj = dict[str, Any]
JOLOKIA_ANNOTATION = "apollo.io/jolokia-port"
JOLOKIA_PORT_NAME = "jolokia"


@dataclass
class Records:
    """What Apollo knows about the targets of one environment, keyed by (service, group)."""

    last_done: dict[tuple[str, str], Obj] = field(default_factory=dict)
    by_sha: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    versions: dict[tuple[str, str], Obj] = field(default_factory=dict)
    in_progress: dict[tuple[str, str], Obj] = field(default_factory=dict)
    latest: dict[tuple[str, str], Obj] = field(default_factory=dict)
    groups: dict[tuple[str, str], Obj] = field(default_factory=dict)
    # What Apollo last applied (the last DONE deployment's manifest documents), by Deployment
    # name: {"images": {container: image}, "replicas": n or None, "template": pod template}.
    applied: dict[tuple[str, str], dict[str, Obj]] = field(default_factory=dict)


def _deployment_record(deployment: Deployment) -> Obj:
    return {
        "id": deployment.pk,
        "sha": deployment.version.git_commit_sha,
        "by": deployment.deployed_by.get_username(),
        "at": (deployment.finished_at or deployment.created_at).isoformat(),
        "status": deployment.status,
    }


def _ranked(queryset: Any, *partition: str) -> Any:
    # The last DONE row per partition (LAST_DONE_ORDER) in one query (window function, SQLite
    # and PostgreSQL).
    order = [F(field[1:]).desc() for field in LAST_DONE_ORDER]
    rank = Window(RowNumber(), partition_by=[F(p) for p in partition], order_by=order)
    return queryset.annotate(rank=rank).filter(rank=1)


def load_records(environment_id: int, running: set[tuple[str, str, str]]) -> Records:
    """Records for the (service, group, sha) triples running in the cluster: six queries."""
    records = Records()
    in_env = Deployment.objects.filter(environment_id=environment_id).with_related()
    for d in _ranked(in_env.filter(status=Status.DONE), "service_id", "group_key"):
        records.last_done[(d.service.name, d.group_key)] = _deployment_record(d)
        records.applied[(d.service.name, d.group_key)] = applied_workloads(d.manifest_documents)
    for d in in_env.in_progress():
        records.in_progress[(d.service.name, d.group_key)] = _deployment_record(d)
    # The newest deployment of each target, whatever its outcome: a target whose only
    # deployments failed was still deployed by Apollo (and says which one failed).
    newest = Window(
        RowNumber(), partition_by=[F("service_id"), F("group_key")], order_by=F("id").desc()
    )
    for d in in_env.annotate(rank=newest).filter(rank=1):
        records.latest[(d.service.name, d.group_key)] = _deployment_record(d)
    shas = {sha for _, _, sha in running if sha}
    names = {service for service, _, _ in running}
    with_sha = in_env.filter(version__git_commit_sha__in=shas, status=Status.DONE)
    for d in _ranked(with_sha, "service_id", "group_key", "version_id"):
        records.by_sha[(d.service.name, d.group_key, d.version.git_commit_sha)] = (
            _deployment_record(d)
        )
    versions = DeployableVersion.objects.filter(
        service__name__in=names, git_commit_sha__in=shas
    ).select_related("service")
    for v in versions:
        records.versions[(v.service.name, v.git_commit_sha)] = {
            "message": v.commit_message.splitlines()[0] if v.commit_message else "",
            "url": v.commit_url,
            "author": v.commit_author,
            "branch": v.branch,
        }
    for g in Group.objects.filter(environment_id=environment_id).select_related("service"):
        records.groups[(g.service.name, g.name)] = {
            "id": g.pk,
            "scaling_factor": g.scaling_factor,
            "scaling_locked": g.scaling_locked,
            "scaling_lock_reason": g.scaling_lock_reason,
        }
    return records


def applied_workloads(documents: list[Obj]) -> dict[str, Obj]:
    """The images, replica count and pod template of every Deployment document Apollo
    applied, by name. Only Deployment documents are read: Secret values (sealed) are never
    touched."""
    applied = {}
    for doc in documents or []:
        if not isinstance(doc, dict) or doc.get("kind") != "Deployment":
            continue
        name = str((doc.get("metadata") or {}).get("name") or "")
        spec = doc.get("spec") or {}
        replicas = spec.get("replicas")
        applied[name] = {
            "images": _images(doc),
            "replicas": int(replicas) if isinstance(replicas, int) else None,
            "template": pod_template(doc),
        }
    return applied


def _images(deployment: Obj) -> dict[str, str]:
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    return {str(c.get("name", "")): str(c.get("image", "")) for c in containers}


def drift_of(running: Obj, applied: Obj | None, *, expected_replicas: int | None) -> list[str]:
    """What differs between a Deployment as the cluster runs it and what Apollo last applied,
    each difference named ("image of container web: ... runs, Apollo applied ..."). Replicas
    count when Apollo fixed them: the manifest's count, or the group's scaling factor (which
    Apollo's scaling changes without a redeploy). The rest of the pod template (env,
    resources, labels, annotations...) is judged by environments.live.template_drift."""
    if applied is None:
        return []
    differences = []
    images = _images(running)
    for container, image in sorted(applied["images"].items()):
        now = images.get(container)
        if now is None:
            differences.append(f"container {container} that Apollo applied is missing")
        elif now != image:
            differences.append(f"image of {container}: {now} runs, Apollo applied {image}")
    for container in sorted(images.keys() - applied["images"].keys()):
        differences.append(f"container {container} was added outside Apollo")
    wanted = expected_replicas if expected_replicas is not None else applied["replicas"]
    replicas = (running.get("spec") or {}).get("replicas")
    if wanted is not None and isinstance(replicas, int) and replicas != wanted:
        differences.append(f"replicas: {replicas} wanted, Apollo set {wanted}")
    if "template" in applied:
        differences += template_drift(pod_template(running), applied["template"])
    return differences


def running_targets(deployments: list[Obj]) -> set[tuple[str, str, str]]:
    targets = set()
    for obj in deployments:
        labels = _labels(obj)
        if labels.get(LABEL_SERVICE):
            targets.add((labels[LABEL_SERVICE], labels.get(LABEL_GROUP, ""), _sha(obj)))
    return targets


def _labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _sha(deployment: Obj) -> str:
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return str((template.get("labels") or {}).get(LABEL_SHA) or _labels(deployment).get(LABEL_SHA))


def build_status(
    *,
    environment: Environment,
    deployments: list[Obj],
    pods: list[Obj],
    records: Records,
    reachable: bool,
    error: str = "",
    now: datetime | None = None,
    replica_sets: list[Obj] | None = None,
) -> Obj:
    """SECURITY: a pod is listed under a service by its owner chain (environments.owners):
    a hand-made pod labelled as a service is not that service's pod."""
    now = now or datetime.now(UTC)
    by_target: dict[tuple[str, str], list[Obj]] = {}
    owned = pod_targets(pods, replica_sets or [], deployments)
    for pod in pods:
        key = owned.get(str((pod.get("metadata") or {}).get("uid") or ""))
        if key is not None:
            by_target.setdefault(key, []).append(pod_summary(pod, now))
    services = []
    for obj in sorted(deployments, key=lambda d: d["metadata"]["name"]):
        labels = _labels(obj)
        if not labels.get(LABEL_SERVICE):
            continue
        key = (labels[LABEL_SERVICE], labels.get(LABEL_GROUP, ""))
        services.append(
            _service_entry(
                obj, key, sorted(by_target.pop(key, []), key=lambda p: p["name"]), records
            )
        )
    return {
        "environment": environment.name,
        "reachable": reachable,
        "error": error,
        "services": sorted(services, key=lambda s: (s["service"], s["group"])),
        "updated_at": now.isoformat(),
    }


def _service_entry(obj: Obj, key: tuple[str, str], pods: list[Obj], records: Records) -> Obj:
    service, group = key
    sha = _sha(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    last = records.last_done.get(key)
    deployed = records.by_sha.get((service, group, sha))
    pending = records.in_progress.get(key)
    version = records.versions.get((service, sha), {})
    drift = _drift(obj, key, records)
    drifted = bool(drift) and not (pending and pending["sha"] == sha)
    return {
        "key": f"{service}/{group}" if group else service,
        "service": service,
        "group": group,
        "group_id": (records.groups.get(key) or {}).get("id"),
        "scaling_locked": (records.groups.get(key) or {}).get("scaling_locked", False),
        "scaling_lock_reason": (records.groups.get(key) or {}).get("scaling_lock_reason", ""),
        "deployment": obj["metadata"]["name"],
        "sha": sha,
        "short_sha": sha[:12],
        "commit_url": version.get("url", ""),
        "message": version.get("message", ""),
        "author": version.get("author", ""),
        "deployed_by": deployed["by"] if deployed else "",
        "deployed_at": deployed["at"] if deployed else "",
        "deployment_id": deployed["id"] if deployed else None,
        "last_done_sha": last["sha"] if last else "",
        "in_progress_id": pending["id"] if pending else None,
        "known": last is not None or key in records.latest,
        "latest": records.latest.get(key),
        "drifted": drifted,
        "drift": drift if drifted else [],
        "desired": int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        "updated": int(status.get("updatedReplicas") or 0),
        "ready": int(status.get("readyReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
        "pods": pods,
    }


def _drift(obj: Obj, key: tuple[str, str], records: Records) -> list[str]:
    """Drift judged by what runs (images, replicas), not only by the commit label: a
    `kubectl set image` keeps the label and changes the image. While a deployment of this
    target is in progress the cluster is expected to differ, and nothing is reported."""
    last = records.last_done.get(key)
    if last is None:
        return []
    differences = []
    sha = _sha(obj)
    if last["sha"] != sha:
        differences.append(
            f"commit label: {sha[:12] or 'none'} runs, Apollo deployed {last['sha'][:12]}"
        )
    workloads = records.applied.get(key) or {}
    applied = workloads.get(str(obj["metadata"]["name"]))
    group = records.groups.get(key)
    expected = int(group["scaling_factor"]) if group else None
    return differences + drift_of(obj, applied, expected_replicas=expected)


def pod_summary(pod: Obj, now: datetime) -> Obj:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    containers = [c["name"] for c in spec.get("containers") or []]
    ready = sum(1 for s in statuses if s.get("ready"))
    reason = ""
    for s in statuses:
        state = s.get("state") or {}
        detail = state.get("waiting") or state.get("terminated") or {}
        if detail.get("reason"):
            reason = str(detail["reason"])
            break
    phase = str(status.get("phase") or "Pending")
    if meta.get("deletionTimestamp"):
        phase = "Terminating"
    created = str(meta.get("creationTimestamp") or "")
    return {
        "name": meta.get("name", ""),
        "phase": phase,
        "ready": f"{ready}/{len(containers)}",
        "all_ready": bool(containers) and ready == len(containers),
        "restarts": sum(int(s.get("restartCount") or 0) for s in statuses),
        "created": created,
        "age": _age(created, now),
        "node": spec.get("nodeName") or "",
        "reason": reason or str(status.get("reason") or ""),
        "containers": containers,
        "jolokia_port": jolokia_port(pod),
    }


def jolokia_port(pod: Obj) -> int | None:
    """The pod's Jolokia port: annotation apollo.io/jolokia-port, or a container port named
    `jolokia` (the annotation wins)."""
    annotation = str(
        ((pod.get("metadata") or {}).get("annotations") or {}).get(JOLOKIA_ANNOTATION, "")
    )
    if annotation.isascii() and annotation.isdigit() and 0 < int(annotation) < 65536:
        return int(annotation)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == JOLOKIA_PORT_NAME and port.get("containerPort"):
                return int(port["containerPort"])
    return None


def _age(created: str, now: datetime) -> str:
    if not created:
        return ""
    try:
        seconds = int(
            (now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds()
        )
    except ValueError:
        return ""
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
