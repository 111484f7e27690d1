"""Defaulting and validation of the objects kubesim stores (a small part of the real registry)."""

from __future__ import annotations

import base64
from typing import Any

from kubesim import resources as R
from kubesim.errors import ApiError, invalid
from kubesim.label_selectors import from_label_selector, labels_match
from kubesim.meta import is_dns_label, is_dns_subdomain

JSON = dict[str, Any]
Cause = tuple[str, str, str]


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


def _default_deployment(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    default_pod_spec(template.setdefault("spec", {}))


def _default_replicaset(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    default_pod_spec(template.setdefault("spec", {}))


def _default_service(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] == "ExternalName":
        return
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {"loadBalancer": {}})


def _default_namespace(obj: JSON) -> None:
    name = obj["metadata"].get("name", "")
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _default_secret(obj: JSON) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    data = obj.setdefault("data", {}) if string_data else obj.get("data")
    for key, value in string_data.items():
        assert data is not None
        data[key] = base64.b64encode(str(value).encode()).decode()


def _default_pod(obj: JSON) -> None:
    default_pod_spec(obj.setdefault("spec", {}))
    obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})


_DEFAULTERS = {
    "Deployment": _default_deployment,
    "ReplicaSet": _default_replicaset,
    "Service": _default_service,
    "Namespace": _default_namespace,
    "Secret": _default_secret,
    "Pod": _default_pod,
}


def prune_nulls(value: Any) -> Any:
    """Drop null fields, as decoding into Go structs with omitempty does (e.g. the
    `creationTimestamp: null` kubectl sends inside pod templates)."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            prune_nulls(item)
    elif isinstance(value, list):
        for item in value:
            prune_nulls(item)
    return value


def apply_defaults(rtype: R.ResourceType, obj: JSON) -> None:
    prune_nulls(obj)
    defaulter = _DEFAULTERS.get(rtype.kind)
    if defaulter:
        defaulter(obj)


# -- validation -------------------------------------------------------------------------------


def _validate_containers(spec: JSON, path: str) -> list[Cause]:
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


def _validate_workload(obj: JSON, kind: str) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(
            (
                "spec.replicas",
                "FieldValueInvalid",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
            )
        )
    selector = spec.get("selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append(("spec.selector", "FieldValueRequired", "Required value"))
    elif not labels_match(from_label_selector(selector), labels) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        causes.append(
            (
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                f"Invalid value: {labels!r}: `selector` does not match template `labels`",
            )
        )
    causes += _validate_containers(
        (spec.get("template") or {}).get("spec") or {}, "spec.template.spec"
    )
    if kind == "Deployment":
        causes += _validate_strategy(spec.get("strategy") or {})
    return causes


def _validate_strategy(strategy: JSON) -> list[Cause]:
    if strategy.get("type") == "Recreate" and strategy.get("rollingUpdate"):
        return [
            (
                "spec.strategy.rollingUpdate",
                "FieldValueForbidden",
                "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            )
        ]
    if strategy.get("type") not in ("Recreate", "RollingUpdate"):
        return [
            (
                "spec.strategy.type",
                "FieldValueNotSupported",
                f'Unsupported value: "{strategy.get("type")}": supported values: '
                '"Recreate", "RollingUpdate"',
            )
        ]
    rolling = strategy.get("rollingUpdate") or {}
    if str(rolling.get("maxSurge")) in ("0", "0%") and str(rolling.get("maxUnavailable")) in (
        "0",
        "0%",
    ):
        return [
            (
                "spec.strategy.rollingUpdate.maxUnavailable",
                "FieldValueInvalid",
                "Invalid value: 0: may not be 0 when `maxSurge` is 0",
            )
        ]
    return []


def _validate_service(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    if spec.get("type") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(
            ("spec.type", "FieldValueNotSupported", f'Unsupported value: "{spec.get("type")}"')
        )
    ports = spec.get("ports") or []
    if spec.get("type") != "ExternalName" and not ports and spec.get("clusterIP") != "None":
        causes.append(("spec.ports", "FieldValueRequired", "Required value"))
    for index, port in enumerate(ports):
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(
                (
                    f"spec.ports[{index}].port",
                    "FieldValueInvalid",
                    f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                )
            )
        if len(ports) > 1 and not port.get("name"):
            causes.append((f"spec.ports[{index}].name", "FieldValueRequired", "Required value"))
        node_port = port.get("nodePort")
        if node_port is not None and spec.get("type") == "ClusterIP":
            causes.append(
                (
                    f"spec.ports[{index}].nodePort",
                    "FieldValueForbidden",
                    "Forbidden: may not be used when `type` is 'ClusterIP'",
                )
            )
    return causes


def validate(rtype: R.ResourceType, obj: JSON) -> None:
    """Raise 422 Invalid (with causes) when the object would be rejected by the real server."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    causes: list[Cause] = []
    name_ok = (
        is_dns_label(name) if rtype.kind in ("Namespace", "Service") else is_dns_subdomain(name)
    )
    if not name:
        causes.append(
            (
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        )
    elif not name_ok:
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": a lowercase '
                "RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                "'-' or '.', and must start and end with an alphanumeric character",
            )
        )
    if rtype.kind in ("Deployment", "ReplicaSet"):
        causes += _validate_workload(obj, rtype.kind)
    elif rtype.kind == "Pod":
        causes += _validate_containers(obj.get("spec") or {}, "spec")
    elif rtype.kind == "Service":
        causes += _validate_service(obj)
    if causes:
        raise invalid(rtype.kind, rtype.group, name, causes)


def validate_update(rtype: R.ResourceType, old: JSON, new: JSON) -> None:
    """Immutable fields, checked on update like the real strategies do."""
    name = new["metadata"]["name"]
    selector = new.get("spec", {}).get("selector")
    if (
        rtype.kind in ("Deployment", "ReplicaSet")
        and old.get("spec", {}).get("selector") != selector
    ):
        raise invalid(
            rtype.kind,
            rtype.group,
            name,
            [
                (
                    "spec.selector",
                    "FieldValueInvalid",
                    f"Invalid value: {selector!r}: field is immutable",
                )
            ],
        )
    if rtype.kind == "Service":
        old_ip = old.get("spec", {}).get("clusterIP")
        new_ip = new.get("spec", {}).get("clusterIP")
        changing_type = new.get("spec", {}).get("type") == "ExternalName"
        if old_ip and new_ip and new_ip != old_ip and not changing_type:
            # As the real Service strategy: an allocated cluster IP may not change.
            raise invalid(
                "Service",
                "",
                name,
                [
                    (
                        "spec.clusterIPs[0]",
                        "FieldValueInvalid",
                        f'Invalid value: []string{{"{new_ip}"}}: may not change once set',
                    )
                ],
            )
    if rtype.kind == "Pod":
        old_spec = {k: v for k, v in old.get("spec", {}).items() if k not in ("containers",)}
        new_spec = {k: v for k, v in new.get("spec", {}).items() if k not in ("containers",)}
        old_images = [c.get("name") for c in old.get("spec", {}).get("containers", [])]
        new_images = [c.get("name") for c in new.get("spec", {}).get("containers", [])]
        if old_spec != new_spec or old_images != new_images:
            raise invalid(
                "Pod",
                "",
                name,
                [
                    (
                        "spec",
                        "FieldValueForbidden",
                        "Forbidden: pod updates may not change fields other than "
                        "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                        "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to "
                        "existing tolerations), `spec.terminationGracePeriodSeconds` (allow it "
                        "to be set to 1 if it was previously negative)",
                    )
                ],
            )


def ensure_object(body: Any) -> JSON:
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        raise ApiError(400, "the body of the request was in an unknown format")
    body.setdefault("metadata", {})
    return body
