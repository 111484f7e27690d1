"""pods/{name}[:port]/proxy/{path}: a plausible Jolokia agent for pods that declare one.

A pod serves Jolokia where one of its containers runs an agent: on a container port named
`jolokia`, or on the port its image's behaviour names (`jolokiaPort`, registered through the
control API), as a JVM image started with the agent listens whatever the pod declares. Any other
port answers 503 like a closed port behind the real API server proxy.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from aiohttp import web

from kubesim import resources as R
from kubesim.cluster import Cluster
from kubesim.errors import ApiError
from kubesim.image_registry import ImageRegistry

JSON = dict[str, Any]
AGENT = {
    "agent": "1.7.2",
    "protocol": "7.2",
    "config": {"agentId": "kubesim-jolokia", "agentType": "jvm"},
    "info": {"product": "tomcat", "vendor": "Apache", "version": "9.0.83"},
}


def jolokia_port(pod: JSON, registry: ImageRegistry) -> int | None:
    """The port a Jolokia agent of the pod listens on: a container port named `jolokia`, else
    the agent port of the first container whose image runs one."""
    containers = pod["spec"].get("containers", [])
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("name") == "jolokia":
                return int(port["containerPort"])
    for container in containers:
        port = registry.lookup(str(container.get("image", ""))).jolokia_port
        if port is not None:
            return port
    return None


def _mbeans(uptime: float) -> dict[str, JSON]:
    wave = (math.sin(uptime / 30) + 1) / 2
    used = int(180_000_000 + wave * 220_000_000)
    return {
        "java.lang:type=Memory": {
            "HeapMemoryUsage": {
                "init": 268435456,
                "committed": 536870912,
                "max": 1073741824,
                "used": used,
            },
            "NonHeapMemoryUsage": {
                "init": 7667712,
                "committed": 98566144,
                "max": -1,
                "used": 91234567,
            },
            "ObjectPendingFinalizationCount": 0,
            "Verbose": False,
        },
        "java.lang:type=Runtime": {
            "Uptime": int(uptime * 1000),
            "VmName": "OpenJDK 64-Bit Server VM",
            "VmVendor": "Eclipse Adoptium",
            "VmVersion": "17.0.9+9",
            "StartTime": int((time.time() - uptime) * 1000),
            "Name": "1@kubesim",
        },
        "java.lang:type=Threading": {
            "ThreadCount": 42 + int(wave * 10),
            "PeakThreadCount": 57,
            "DaemonThreadCount": 31,
        },
        "java.lang:type=OperatingSystem": {
            "AvailableProcessors": 2,
            "SystemLoadAverage": round(0.4 + wave, 2),
            "ProcessCpuLoad": round(0.05 + wave / 5, 4),
        },
        "java.lang:name=G1 Young Generation,type=GarbageCollector": {
            "CollectionCount": int(uptime / 7),
            "CollectionTime": int(uptime * 3),
        },
    }


def _error(request: JSON, mbean: str) -> JSON:
    return {
        "request": request,
        "status": 404,
        "error_type": "javax.management.InstanceNotFoundException",
        "error": f"javax.management.InstanceNotFoundException : {mbean}",
    }


def jolokia_request(request: JSON, uptime: float) -> JSON:
    """Answer one Jolokia request object ({"type": "read", "mbean": ..., "attribute": ...})."""
    now = int(time.time())
    kind = request.get("type", "")
    if kind == "version":
        return {"request": request, "value": AGENT, "timestamp": now, "status": 200}
    beans = _mbeans(uptime)
    if kind == "search":
        pattern = str(request.get("mbean", "")).replace("*", "")
        found = [name for name in beans if pattern.split(":")[0] in name]
        return {"request": request, "value": found, "timestamp": now, "status": 200}
    if kind == "list":
        return {
            "request": request,
            "value": {name: {"attr": {a: {} for a in attrs}} for name, attrs in beans.items()},
            "timestamp": now,
            "status": 200,
        }
    mbean = str(request.get("mbean", ""))
    if mbean not in beans:
        return _error(request, mbean)
    if kind == "exec":
        return {"request": request, "value": None, "timestamp": now, "status": 200}
    if kind != "read":
        return {
            "request": request,
            "status": 400,
            "error_type": "java.lang.IllegalArgumentException",
            "error": f"java.lang.IllegalArgumentException : Invalid request type '{kind}'",
        }
    return _read(request, beans[mbean], now)


def _read(request: JSON, bean: JSON, now: int) -> JSON:
    attribute = request.get("attribute")
    path = request.get("path")
    if not attribute:
        return {"request": request, "value": bean, "timestamp": now, "status": 200}
    if attribute not in bean:
        return {
            "request": request,
            "status": 404,
            "error_type": "javax.management.AttributeNotFoundException",
            "error": "javax.management.AttributeNotFoundException : No such attribute: "
            f"{attribute}",
        }
    value = bean[attribute]
    if path and isinstance(value, dict):
        value = value.get(path)
    return {"request": request, "value": value, "timestamp": now, "status": 200}


def parse_get(path: str) -> JSON:
    """GET /jolokia/<type>/<mbean>/<attribute>/<path> to a request object."""
    parts = path.strip("/").split("/")
    if parts and parts[0] == "jolokia":
        parts = parts[1:]
    if not parts or not parts[0]:
        return {"type": "version"}
    request: JSON = {"type": parts[0]}
    if len(parts) > 1:
        request["mbean"] = parts[1].replace("!/", "/")
    if len(parts) > 2:
        request["attribute"] = parts[2]
    if len(parts) > 3:
        request["path"] = "/".join(parts[3:])
    return request


class ProxyHandler:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def __call__(
        self, namespace: str, name_port: str, path: str, request: web.Request
    ) -> web.StreamResponse:
        name, _, port_text = name_port.partition(":")
        port_text = port_text.rsplit(":", 1)[-1]  # "https:name:port" style keeps the last part
        pod = self.cluster.api.get(R.PODS, namespace, name)
        port = jolokia_port(pod, self.cluster.images)
        ip = pod.get("status", {}).get("podIP")
        if pod.get("status", {}).get("phase") != "Running" or not ip:
            raise ApiError(
                503,
                f'error trying to reach service: pod "{name}" is not running',
                reason="ServiceUnavailable",
            )
        wanted = int(port_text) if port_text.isdigit() else port
        if port is None or wanted != port:
            target = f"{ip}:{wanted or 80}"
            raise ApiError(
                503,
                f"error trying to reach service: dial tcp {target}: connect: connection refused",
                reason="ServiceUnavailable",
            )
        if not path.strip("/").startswith("jolokia"):
            return web.Response(status=404, text="Not Found\n", content_type="text/plain")
        uptime = time.time() - _started(pod)
        if request.method == "POST":
            return await self._post(request, uptime)
        return web.json_response(jolokia_request(parse_get(path), uptime))

    async def _post(self, request: web.Request, uptime: float) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.json_response(
                {
                    "status": 400,
                    "error_type": "java.lang.IllegalArgumentException",
                    "error": "Invalid JSON request",
                }
            )
        if isinstance(body, list):
            return web.json_response([jolokia_request(item, uptime) for item in body])
        return web.json_response(jolokia_request(body, uptime))


def _started(pod: JSON) -> float:
    from kubesim.meta import parse_iso

    started = pod.get("status", {}).get("startTime")
    return parse_iso(started) if started else time.time()
