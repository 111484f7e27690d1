"""The plain kinds of core/v1: ConfigMaps, Secrets (stringData folded into data), Events and
Nodes; only their defaults and kubectl's columns differ from a plain object."""

from __future__ import annotations

import base64

from kubesim import resources as R
from kubesim.kinds.strategy import INTEGER, JSON, STRING, Row, Strategy, age
from kubesim.meta import human_age, parse_iso


class ConfigMapStrategy(Strategy):
    resource = R.CONFIGMAPS
    columns = (("Name", STRING, 0), ("Data", INTEGER, 0), ("Age", STRING, 0))

    def row(self, obj: JSON, now: float) -> Row:
        data = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
        return [obj["metadata"]["name"], data, age(obj, now)]


class SecretStrategy(Strategy):
    resource = R.SECRETS
    columns = (("Name", STRING, 0), ("Type", STRING, 0), ("Data", INTEGER, 0), ("Age", STRING, 0))

    def default(self, obj: JSON) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {}) if string_data else obj.get("data")
        for key, value in string_data.items():
            assert data is not None
            data[key] = base64.b64encode(str(value).encode()).decode()

    def row(self, obj: JSON, now: float) -> Row:
        return [
            obj["metadata"]["name"],
            obj.get("type", ""),
            len(obj.get("data") or {}),
            age(obj, now),
        ]


class EventStrategy(Strategy):
    resource = R.EVENTS
    columns = (
        ("Last Seen", STRING, 0),
        ("Type", STRING, 0),
        ("Reason", STRING, 0),
        ("Object", STRING, 0),
        ("Subobject", STRING, 1),
        ("Source", STRING, 1),
        ("Message", STRING, 0),
        ("First Seen", STRING, 1),
        ("Count", INTEGER, 1),
        ("Name", STRING, 1),
    )

    def row(self, obj: JSON, now: float) -> Row:
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


class NodeStrategy(Strategy):
    resource = R.NODES
