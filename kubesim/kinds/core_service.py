"""Services (core/v1): defaults, ports' validation, a cluster IP and node ports allocated on
admission and freed on removal, an allocated cluster IP that may not change, kubectl's columns."""

from __future__ import annotations

from typing import Any

from kubesim import resources as R
from kubesim.kinds.strategy import JSON, STRING, Cause, Row, Strategy, age


class ServiceStrategy(Strategy):
    resource = R.SERVICES
    return_deleted_object = True
    name_is_label = True
    subresource_kinds = {"proxy": "ServiceProxyOptions"}
    columns = (
        ("Name", STRING, 0),
        ("Type", STRING, 0),
        ("Cluster-IP", STRING, 0),
        ("External-IP", STRING, 0),
        ("Port(s)", STRING, 0),
        ("Age", STRING, 0),
        ("Selector", STRING, 1),
    )

    def default(self, obj: JSON) -> None:
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

    def validate(self, obj: JSON) -> list[Cause]:
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
            causes += _port_causes(spec, ports, index, port)
        return causes

    def validate_update(self, old: JSON, new: JSON) -> list[Cause]:
        old_ip = old.get("spec", {}).get("clusterIP")
        new_ip = new.get("spec", {}).get("clusterIP")
        changing_type = new.get("spec", {}).get("type") == "ExternalName"
        if old_ip and new_ip and new_ip != old_ip and not changing_type:
            # As the real Service strategy: an allocated cluster IP may not change.
            return [
                (
                    "spec.clusterIPs[0]",
                    "FieldValueInvalid",
                    f'Invalid value: []string{{"{new_ip}"}}: may not change once set',
                )
            ]
        return []

    def allocate(self, allocator: Any, obj: JSON, old: JSON | None) -> None:
        allocator.assign(obj, old)

    def release(self, allocator: Any, obj: JSON) -> None:
        allocator.release(obj)

    def row(self, obj: JSON, now: float) -> Row:
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
            age(obj, now),
            selector or "<none>",
        ]


def _port_causes(spec: JSON, ports: list[JSON], index: int, port: JSON) -> list[Cause]:
    causes: list[Cause] = []
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
    if port.get("nodePort") is not None and spec.get("type") == "ClusterIP":
        causes.append(
            (
                f"spec.ports[{index}].nodePort",
                "FieldValueForbidden",
                "Forbidden: may not be used when `type` is 'ClusterIP'",
            )
        )
    return causes
