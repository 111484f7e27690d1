"""Server-side apply of the manifests Apollo owns (with the ownership and host checks), and
the pod actions of the environment page (delete a pod, restart or scale a Deployment)."""

import threading
from dataclasses import dataclass
from typing import Any

from environments.kube.client import (
    FIELD_MANAGER,
    _apis,
    _call,
    _plain,
    api_client,
    connection_key,
)
from environments.kube.errors import KubeError
from environments.kube.labels import LABEL_GROUP, LABEL_SERVICE, MANAGED_BY
from environments.kube.read import _call_json
from environments.models import Cluster
from environments.names import check_object_name

Obj = dict[str, Any]


@dataclass(frozen=True)
class ApplyPath:
    api: str  # "core", "apps", "networking"
    plural: str


APPLY_PATHS: dict[str, ApplyPath] = {
    "Deployment": ApplyPath("apps", "deployment"),
    "Service": ApplyPath("core", "service"),
    "ConfigMap": ApplyPath("core", "config_map"),
    "Secret": ApplyPath("core", "secret"),
    "Ingress": ApplyPath("networking", "ingress"),
}


class NotOwned(Exception):
    """An object of the manifests exists and does not carry this service's (and group's)
    identity labels: Apollo does not take it over. The message names its owner."""


# SECURITY: the labels that say which service (and group) an object Apollo applied belongs to.
IDENTITY_LABELS = (MANAGED_BY, LABEL_SERVICE, LABEL_GROUP)


def apply(
    cluster: Cluster,
    namespace: str,
    documents: list[Obj],
    *,
    checked: dict[tuple[str, str], str | None] | None = None,
) -> list[Obj]:
    """Server-side apply every document with field manager `apollo` (force: Apollo owns them).

    SECURITY: an object is applied only when it does not exist or carries the identity labels
    of the document (this service's, and group's); otherwise NotOwned, and that document is
    not applied. `checked` holds what owned_version (or known_version) said of (kind, name)
    just before (the worker checks every document before the first apply); the others are
    checked here. The checked resourceVersion goes with the apply: an object changed since the
    check makes the API server refuse the apply (409) rather than Apollo take it over. Each
    object applied is remembered at the version the answer gives (known_version).
    """
    apis = _apis(cluster)
    applied = []
    for doc in documents:
        path = APPLY_PATHS[doc["kind"]]
        name = doc["metadata"]["name"]
        key = (doc["kind"], name)
        version = (
            checked[key] if checked and key in checked else owned_version(cluster, namespace, doc)
        )
        try:
            answer = _apply_one(cluster, namespace, apis[path.api], path, doc, version)
        except Exception:
            forget(cluster, namespace, doc)  # the next apply checks its owner again
            raise
        remember(cluster, namespace, answer, kind=doc["kind"])
        applied.append(answer)
    return applied


def _apply_one(
    cluster: Cluster, namespace: str, api: Any, path: ApplyPath, doc: Obj, version: str | None
) -> Obj:
    """The apply's answer as the API server sent it: decoded from JSON once, not built into the
    client's models and turned back into a dict (1.3 ms of a Deployment's round trip, on the
    worker's GIL while the other documents' answers wait)."""
    name = doc["metadata"]["name"]
    patch = getattr(api, f"patch_namespaced_{path.plural}")
    for attempt in range(APPLY_CONFLICT_ATTEMPTS):
        body = doc
        if version:
            body = {**doc, "metadata": {**doc["metadata"], "resourceVersion": version}}
        try:
            return _call_json(
                patch,
                name,
                namespace,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        except KubeError as exc:
            # On a real cluster the controllers write an object's status between the check
            # and the apply (a Deployment mid-rollout), which changes its resourceVersion:
            # 409; so does any change by another field manager since Apollo last saw it
            # (a remembered version), and a precondition on an object deleted since may be
            # answered 404. SECURITY: check the owner again and apply with the new version;
            # an object replaced or relabelled by another owner meanwhile is NotOwned.
            conflict = exc.status in (404, 409)
            if not conflict or not version or attempt == APPLY_CONFLICT_ATTEMPTS - 1:
                raise
            version = owned_version(cluster, namespace, doc)
    raise AssertionError("unreachable: the last attempt raises")


APPLY_CONFLICT_ATTEMPTS = 5

# The objects Apollo applied or watched, at the last resourceVersion it saw of each (this
# process's memory): what known_version answers without asking the API server.
_KNOWN: dict[tuple[object, ...], tuple[str, tuple[object, ...]]] = {}
_KNOWN_LOCK = threading.Lock()
KNOWN_LIMIT = 10_000  # objects; past it the memory starts again (each then checked once more)


def _known_key(cluster: Cluster, namespace: str, kind: str, name: str) -> tuple[object, ...]:
    return (connection_key(cluster), namespace, kind, name)


def _identity(labels: dict[str, Any]) -> tuple[object, ...]:
    """The identity labels as _check_owner compares them (a missing label is not "")."""
    return tuple(labels.get(label) for label in IDENTITY_LABELS)


def remember(cluster: Cluster, namespace: str, obj: Obj, *, kind: str) -> None:
    """Remember an object of `kind` as Apollo saw it from the API server (an apply's answer,
    the Deployment a rollout's watch saw last): its resourceVersion and identity labels."""
    meta = obj.get("metadata") or {}
    version, name = str(meta.get("resourceVersion") or ""), str(meta.get("name") or "")
    if not version or not name or kind not in APPLY_PATHS:
        return
    entry = (version, _identity(meta.get("labels") or {}))
    with _KNOWN_LOCK:
        if len(_KNOWN) >= KNOWN_LIMIT:
            _KNOWN.clear()
        _KNOWN[_known_key(cluster, namespace, kind, name)] = entry


def forget(cluster: Cluster, namespace: str, doc: Obj) -> None:
    with _KNOWN_LOCK:
        _KNOWN.pop(_known_key(cluster, namespace, doc["kind"], doc["metadata"]["name"]), None)


def known_version(cluster: Cluster, namespace: str, doc: Obj) -> str | None:
    """What owned_version would say of the document, without asking the API server, when
    Apollo saw the object last carrying the document's identity labels; None when unknown
    (then owned_version asks).

    SECURITY: the version goes with the apply as a precondition (apply): an object that any
    other writer changed, relabelled, replaced or deleted since Apollo saw it does not match
    it, the API server refuses the apply, and the owner is checked again (409) or the caller
    checks before it retries (5xx). So the version vouches only for the object Apollo saw,
    which carried this document's identity. Never for an Ingress: its hosts are checked
    against other namespaces' Ingresses, which that version does not cover.
    """
    if doc["kind"] == "Ingress":
        return None
    with _KNOWN_LOCK:
        entry = _KNOWN.get(_known_key(cluster, namespace, doc["kind"], doc["metadata"]["name"]))
    if entry is None:
        return None
    version, identity = entry
    if identity != _identity(doc["metadata"].get("labels") or {}):
        return None
    return version


def owned_version(cluster: Cluster, namespace: str, doc: Obj) -> str | None:
    """The resourceVersion of the object the document names when it carries the document's
    identity labels, None when it does not exist; NotOwned (naming the owner) otherwise."""
    path = APPLY_PATHS[doc["kind"]]
    if doc["kind"] == "Ingress":
        _check_hosts(cluster, namespace, doc)
    current = _read_current(_apis(cluster), path, namespace, doc["metadata"]["name"])
    if current is None:
        return None
    _check_owner(doc, current)
    return str((current.get("metadata") or {}).get("resourceVersion") or "") or None


def _read_current(apis: dict[str, Any], path: ApplyPath, namespace: str, name: str) -> Obj | None:
    read = getattr(apis[path.api], f"read_namespaced_{path.plural}")
    try:
        return _call_json(read, name, namespace)  # (as the apply's answer: JSON decoded once)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def _check_hosts(cluster: Cluster, namespace: str, doc: Obj) -> None:
    """SECURITY: an Ingress may not claim a host another owner's Ingress serves (in any
    namespace Apollo may list; in this one when it may not list them all)."""
    hosts = _ingress_hosts(doc)
    if not hosts:
        return
    api = _apis(cluster)["networking"]
    try:
        listed = _call(api.list_ingress_for_all_namespaces)
    except KubeError as exc:
        if exc.status != 403:
            raise
        listed = _call(api.list_namespaced_ingress, namespace)
    wanted = doc["metadata"].get("labels") or {}
    for other in _plain(api.api_client, listed).get("items") or []:
        meta = other.get("metadata") or {}
        labels = meta.get("labels") or {}
        mine = all(labels.get(label) == wanted.get(label) for label in IDENTITY_LABELS)
        if meta.get("namespace") == namespace and mine:
            continue
        for host in sorted(hosts & _ingress_hosts(other)):
            owner = labels.get(LABEL_SERVICE) or "not created by Apollo"
            raise NotOwned(
                f"Ingress/{doc['metadata']['name']}: host {host} is already served by "
                f"Ingress/{meta.get('name')} in {meta.get('namespace')} (service: {owner})"
            )


def _ingress_hosts(ingress: Obj) -> set[str]:
    spec = ingress.get("spec") or {}
    hosts = {str(rule.get("host")) for rule in spec.get("rules") or [] if rule.get("host")}
    for tls in spec.get("tls") or []:
        hosts.update(str(host) for host in tls.get("hosts") or [])
    return hosts


def _check_owner(doc: Obj, current: Obj) -> None:
    wanted = doc["metadata"].get("labels") or {}
    found = (current.get("metadata") or {}).get("labels") or {}
    if all(found.get(label) == wanted.get(label) for label in IDENTITY_LABELS):
        return
    what = f"{doc['kind']}/{doc['metadata']['name']}"
    if found.get(MANAGED_BY) != "apollo" or not found.get(LABEL_SERVICE):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(found.items())[:8]) or "none"
        raise NotOwned(f"{what} exists and was not created by Apollo (its labels: {shown})")
    owner = found[LABEL_SERVICE] + (
        f", group {found[LABEL_GROUP]}" if found.get(LABEL_GROUP) else ""
    )
    raise NotOwned(f"{what} exists and belongs to another owner: service {owner}")


RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def delete_pod(cluster: Cluster, namespace: str, name: str) -> None:
    """Delete one pod; its ReplicaSet creates the replacement (404 counts as done)."""
    check_object_name(name, what="pod")
    try:
        _call(_apis(cluster)["core"].delete_namespaced_pod, name, namespace)
    except KubeError as exc:
        if exc.status != 404:
            raise


def restart_deployment(cluster: Cluster, namespace: str, name: str, *, at: str) -> Obj:
    """What `kubectl rollout restart` does: stamp the pod template so that a rollout starts."""
    check_object_name(name, what="Deployment")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
    obj = _call(
        _apis(cluster)["apps"].patch_namespaced_deployment,
        name,
        namespace,
        patch,
        field_manager=FIELD_MANAGER,
        _content_type="application/strategic-merge-patch+json",
    )
    return _plain(api_client(cluster), obj)


def scale_deployment(cluster: Cluster, namespace: str, name: str, *, replicas: int) -> Obj:
    check_object_name(name, what="Deployment")
    obj = _call(
        _apis(cluster)["apps"].patch_namespaced_deployment_scale,
        name,
        namespace,
        {"spec": {"replicas": replicas}},
        field_manager=FIELD_MANAGER,
        _content_type="application/merge-patch+json",
    )
    return _plain(api_client(cluster), obj)
