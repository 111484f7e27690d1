"""Server-side printing (meta.k8s.io/v1 Table), the format kubectl asks for on `get`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubesim.label_selectors import selector_string
from kubesim.meta import human_age, parse_iso

JSON = dict[str, Any]
Column = tuple[str, str, int]  # name, type, priority
Row = list[Any]


def _age(obj: JSON, now: float) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    return human_age(parse_iso(created), now) if created else "<unknown>"


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


def _pod_row(pod: JSON, now: float) -> Row:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount", 0)) for cs in statuses)
    last = [cs.get("lastState", {}).get("terminated", {}).get("finishedAt") for cs in statuses]
    finished = [parse_iso(t) for t in last if t]
    restart_text = (
        f"{restarts} ({human_age(max(finished), now)} ago)" if finished else str(restarts)
    )
    status = pod.get("status") or {}
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        pod_status_reason(pod),
        restart_text,
        _age(pod, now),
        status.get("podIP") or "<none>",
        pod.get("spec", {}).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _containers(spec: JSON) -> tuple[str, str]:
    containers = spec.get("template", {}).get("spec", {}).get("containers") or []
    return (
        ",".join(str(c.get("name")) for c in containers),
        ",".join(str(c.get("image")) for c in containers),
    )


def _deployment_row(obj: JSON, now: float) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(spec)
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj, now),
        names,
        images,
        selector_string(spec.get("selector")),
    ]


def _replicaset_row(obj: JSON, now: float) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(spec)
    return [
        obj["metadata"]["name"],
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj, now),
        names,
        images,
        selector_string(spec.get("selector")),
    ]


def _service_row(obj: JSON, now: float) -> Row:
    spec = obj.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}:{p['nodePort']}" if p.get("nodePort") else str(p.get("port"))
        ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    external = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [
        obj["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or "<none>",
        external,
        ",".join(ports) or "<none>",
        _age(obj, now),
        selector or "<none>",
    ]


def _event_row(obj: JSON, now: float) -> Row:
    involved = obj.get("involvedObject") or {}
    last = obj.get("lastTimestamp") or obj.get("metadata", {}).get("creationTimestamp")
    first = obj.get("firstTimestamp") or last
    source = obj.get("source") or {}
    return [
        human_age(parse_iso(last), now) if last else "<unknown>",
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name')}",
        involved.get("fieldPath", ""),
        ", ".join(v for v in (source.get("component"), source.get("host")) if v),
        obj.get("message", ""),
        human_age(parse_iso(first), now) if first else "<unknown>",
        obj.get("count", 1),
        obj["metadata"]["name"],
    ]


def _ingress_row(obj: JSON, now: float) -> Row:
    spec = obj.get("spec") or {}
    hosts = [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
    ports = "80, 443" if spec.get("tls") else "80"
    return [
        obj["metadata"]["name"],
        spec.get("ingressClassName") or "<none>",
        ",".join(hosts) or "*",
        "",
        ports,
        _age(obj, now),
    ]


_S, _I = "string", "integer"
PRINTERS: dict[str, tuple[list[Column], Callable[[JSON, float], Row]]] = {
    "Pod": (
        [
            ("Name", _S, 0),
            ("Ready", _S, 0),
            ("Status", _S, 0),
            ("Restarts", _S, 0),
            ("Age", _S, 0),
            ("IP", _S, 1),
            ("Node", _S, 1),
            ("Nominated Node", _S, 1),
            ("Readiness Gates", _S, 1),
        ],
        _pod_row,
    ),
    "Deployment": (
        [
            ("Name", _S, 0),
            ("Ready", _S, 0),
            ("Up-to-date", _I, 0),
            ("Available", _I, 0),
            ("Age", _S, 0),
            ("Containers", _S, 1),
            ("Images", _S, 1),
            ("Selector", _S, 1),
        ],
        _deployment_row,
    ),
    "ReplicaSet": (
        [
            ("Name", _S, 0),
            ("Desired", _I, 0),
            ("Current", _I, 0),
            ("Ready", _I, 0),
            ("Age", _S, 0),
            ("Containers", _S, 1),
            ("Images", _S, 1),
            ("Selector", _S, 1),
        ],
        _replicaset_row,
    ),
    "Service": (
        [
            ("Name", _S, 0),
            ("Type", _S, 0),
            ("Cluster-IP", _S, 0),
            ("External-IP", _S, 0),
            ("Port(s)", _S, 0),
            ("Age", _S, 0),
            ("Selector", _S, 1),
        ],
        _service_row,
    ),
    "Event": (
        [
            ("Last Seen", _S, 0),
            ("Type", _S, 0),
            ("Reason", _S, 0),
            ("Object", _S, 0),
            ("Subobject", _S, 1),
            ("Source", _S, 1),
            ("Message", _S, 0),
            ("First Seen", _S, 1),
            ("Count", _I, 1),
            ("Name", _S, 1),
        ],
        _event_row,
    ),
    "Ingress": (
        [
            ("Name", _S, 0),
            ("Class", _S, 0),
            ("Hosts", _S, 0),
            ("Address", _S, 0),
            ("Ports", _S, 0),
            ("Age", _S, 0),
        ],
        _ingress_row,
    ),
    "Namespace": (
        [("Name", _S, 0), ("Status", _S, 0), ("Age", _S, 0)],
        lambda o, n: [o["metadata"]["name"], o.get("status", {}).get("phase", ""), _age(o, n)],
    ),
    "ConfigMap": (
        [("Name", _S, 0), ("Data", _I, 0), ("Age", _S, 0)],
        lambda o, n: [
            o["metadata"]["name"],
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            _age(o, n),
        ],
    ),
    "Secret": (
        [("Name", _S, 0), ("Type", _S, 0), ("Data", _I, 0), ("Age", _S, 0)],
        lambda o, n: [
            o["metadata"]["name"],
            o.get("type", ""),
            len(o.get("data") or {}),
            _age(o, n),
        ],
    ),
}
_DEFAULT: tuple[list[Column], Callable[[JSON, float], Row]] = (
    [("Name", _S, 0), ("Age", _S, 0)],
    lambda o, n: [o["metadata"]["name"], _age(o, n)],
)


def _row_object(obj: JSON, include: str) -> JSON | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(kind: str, objects: list[JSON], list_meta: JSON, include: str = "Metadata") -> JSON:
    columns, printer = PRINTERS.get(kind, _DEFAULT)
    now = time.time()
    definitions = [
        {
            "name": name,
            "type": type_,
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": priority,
        }
        for name, type_, priority in columns
    ]
    rows = [{"cells": printer(obj, now), "object": _row_object(obj, include)} for obj in objects]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": rows,
    }
