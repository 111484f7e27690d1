"""Ingresses (networking.k8s.io/v1): a plain object with a generation; kubectl's columns."""

from __future__ import annotations

from kubesim import resources as R
from kubesim.kinds.strategy import JSON, STRING, Row, Strategy, age


class IngressStrategy(Strategy):
    resource = R.INGRESSES
    columns = (
        ("Name", STRING, 0),
        ("Class", STRING, 0),
        ("Hosts", STRING, 0),
        ("Address", STRING, 0),
        ("Ports", STRING, 0),
        ("Age", STRING, 0),
    )

    def row(self, obj: JSON, now: float) -> Row:
        spec = obj.get("spec") or {}
        hosts = [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
        ports = "80, 443" if spec.get("tls") else "80"
        return [
            obj["metadata"]["name"],
            spec.get("ingressClassName") or "<none>",
            ",".join(hosts) or "*",
            "",
            ports,
            age(obj, now),
        ]
