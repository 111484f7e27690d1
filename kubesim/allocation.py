"""Service IP and NodePort allocation (node ports are unique across all namespaces)."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from kubesim.errors import invalid

JSON = dict[str, Any]
NODE_PORT_MIN = 30000
NODE_PORT_MAX = 32767


class Allocator:
    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._next_cluster_ip = int(ipaddress.IPv4Address("10.96.0.10"))
        self._next_pod_ip = int(ipaddress.IPv4Address("10.244.0.2"))
        self.node_ports: dict[int, tuple[str, str]] = {}

    def cluster_ip(self) -> str:
        ip = str(ipaddress.IPv4Address(self._next_cluster_ip))
        self._next_cluster_ip += 1
        return ip

    def pod_ip(self) -> str:
        ip = str(ipaddress.IPv4Address(self._next_pod_ip))
        self._next_pod_ip += 1
        return ip

    def _free_node_port(self) -> int:
        for _ in range(1000):
            port = self._rng.randint(NODE_PORT_MIN, NODE_PORT_MAX)
            if port not in self.node_ports:
                return port
        return next(p for p in range(NODE_PORT_MIN, NODE_PORT_MAX + 1) if p not in self.node_ports)

    def assign(self, service: JSON, old: JSON | None) -> None:
        """Fill clusterIP and node ports; raise 422 on a taken or out-of-range nodePort.

        Nothing is reserved until every port validated, so a rejected request leaks nothing.
        """
        spec = service.setdefault("spec", {})
        meta = service["metadata"]
        owner = (meta.get("namespace", ""), meta["name"])
        old_spec = (old or {}).get("spec") or {}
        if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP") or self.cluster_ip()
        if spec.get("clusterIP") and spec["type"] != "ExternalName":
            spec["clusterIPs"] = [spec["clusterIP"]]
        wanted = self._wanted_ports(spec, old_spec, owner, meta["name"])
        self.release(old)
        for index, port in wanted.items():
            chosen = port or self._free_node_port()
            spec["ports"][index]["nodePort"] = chosen
            self.node_ports[chosen] = owner

    def _wanted_ports(
        self, spec: JSON, old_spec: JSON, owner: tuple[str, str], name: str
    ) -> dict[int, int]:
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            return {}
        old_ports = {p.get("port"): p.get("nodePort") for p in old_spec.get("ports") or []}
        wanted: dict[int, int] = {}
        for index, port in enumerate(spec.get("ports") or []):
            requested = port.get("nodePort") or old_ports.get(port.get("port")) or 0
            field = f"spec.ports[{index}].nodePort"
            if requested and not NODE_PORT_MIN <= requested <= NODE_PORT_MAX:
                raise invalid(
                    "Service",
                    "",
                    name,
                    [
                        (
                            field,
                            "FieldValueInvalid",
                            f"Invalid value: {requested}: provided port is not in the valid range. "
                            f"The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}",
                        )
                    ],
                )
            holder = self.node_ports.get(requested)
            if requested and ((holder and holder != owner) or requested in wanted.values()):
                raise invalid(
                    "Service",
                    "",
                    name,
                    [
                        (
                            field,
                            "FieldValueInvalid",
                            f"Invalid value: {requested}: provided port is already allocated",
                        )
                    ],
                )
            wanted[index] = requested
        return wanted

    def release(self, service: JSON | None) -> None:
        if not service:
            return
        meta = service["metadata"]
        owner = (meta.get("namespace", ""), meta["name"])
        for port in (service.get("spec") or {}).get("ports") or []:
            number = port.get("nodePort")
            if number and self.node_ports.get(number) == owner:
                del self.node_ports[number]
