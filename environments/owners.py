"""Which Apollo service (and group) a pod belongs to, from its owner chain, never its labels.

SECURITY: anybody who may create a pod in the namespace may label it ``apollo.io/service:
checkout``. Deciding from that label handed checkout's log, exec and restart decisions (and
its place on the environment page) to a hand-made pod. A pod belongs to a service only when:

1. its controller (the ``ownerReferences`` entry with ``controller: true``) is a ReplicaSet,
   whose own controller is a Deployment, each reference matching the owner's ``uid``;
2. that Deployment was applied by Apollo: it carries Apollo's identity labels
   (``app.kubernetes.io/managed-by: apollo`` and ``apollo.io/service``) and Apollo is one of
   its field managers (``managedFields``), as server-side apply by Apollo leaves it.

The service and group are then the Deployment's identity labels. Pure functions; the caller
reads the objects (``environments.services.find_pod``, the shared watch).
"""

from typing import Any

from environments.kube.labels import LABEL_GROUP, LABEL_SERVICE, MANAGED_BY

Obj = dict[str, Any]
Target = tuple[str, str]  # (service, group)
FIELD_MANAGER = "apollo"  # environments.kube.FIELD_MANAGER (kube imports models; this may not)


def controller(obj: Obj, kind: str) -> Obj | None:
    """The object's controller reference if it is of this kind (name and uid), else None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") and ref.get("kind") == kind:
            return ref
    return None


def _uid(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")


def apollo_target(deployment: Obj) -> Target | None:
    """(service, group) of a Deployment that Apollo applied, else None."""
    meta = deployment.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY) != "apollo" or not labels.get(LABEL_SERVICE):
        return None
    managers = {entry.get("manager") for entry in meta.get("managedFields") or []}
    if FIELD_MANAGER not in managers:
        return None
    return str(labels[LABEL_SERVICE]), str(labels.get(LABEL_GROUP) or "")


def owned_by(child: Obj, owner: Obj | None, kind: str) -> bool:
    """Is `owner` (of `kind`) the controller of `child`, by uid?"""
    ref = controller(child, kind)
    return ref is not None and owner is not None and str(ref.get("uid") or "") == _uid(owner)


def pod_target(pod: Obj, replica_set: Obj | None, deployment: Obj | None) -> Target | None:
    """The rule of the module docstring for one pod and the owners read for it."""
    if not owned_by(pod, replica_set, "ReplicaSet") or replica_set is None:
        return None
    if not owned_by(replica_set, deployment, "Deployment") or deployment is None:
        return None
    return apollo_target(deployment)


def pod_targets(
    pods: list[Obj], replica_sets: list[Obj], deployments: list[Obj]
) -> dict[str, Target]:
    """(service, group) by pod uid, for the pods whose owner chain leads to Apollo."""
    sets = {_uid(rs): rs for rs in replica_sets}
    owners = {_uid(d): d for d in deployments}
    found = {}
    for pod in pods:
        rs = sets.get(str((controller(pod, "ReplicaSet") or {}).get("uid") or ""))
        deployment = None
        if rs is not None:
            deployment = owners.get(str((controller(rs, "Deployment") or {}).get("uid") or ""))
        target = pod_target(pod, rs, deployment)
        if target is not None:
            found[_uid(pod)] = target
    return found
