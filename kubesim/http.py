"""Kubernetes REST routing: path parsing, CRUD, list/watch and subresource dispatch."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from kubesim import discovery, schema, tables
from kubesim import resources as R
from kubesim.api import PATCH_TYPES, DeleteOptions
from kubesim.cluster import Cluster
from kubesim.errors import ApiError, bad_request, not_found, success_status
from kubesim.kinds import Kinds, Strategy
from kubesim.label_selectors import make_filter
from kubesim.store import Entry, Watcher, dumps
from kubesim.watch_options import check_list_options, flag, watch_start

JSON = dict[str, Any]
SubHandler = Callable[["Route", web.Request], Awaitable[web.StreamResponse]]
# Set once a streaming response (watch, log follow) has sent its headers.
STREAMING = web.RequestKey("streaming", bool)


@dataclass
class Route:
    rtype: R.ResourceType
    namespace: str
    name: str
    subresource: str
    rest: str  # remaining path for proxy

    @property
    def key_namespace(self) -> str:
        return self.namespace if self.rtype.namespaced else ""


def json_response(data: Any, status: int = 200, *, warnings: Sequence[str] = ()) -> web.Response:
    response = web.Response(body=dumps(data), status=status, content_type="application/json")
    for warning in warnings:
        # As the real server: RFC 7234 warn-code 299, the text quoted with \" escaped.
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def _checked(request: web.Request, route: Route, body: Any) -> list[str]:
    """Unknown fields of a create/update/patch body against the real server's schema."""
    if route.subresource or not isinstance(body, dict):
        return []
    return schema.check_request(
        route.rtype.api_version,
        route.rtype.kind,
        body,
        validation=schema.field_validation(request.query),
    )


def parse_route(path: str, kinds: Kinds) -> Route | None:
    """Split /api/v1/... or /apis/g/v/... into resource type, namespace, name, subresource."""
    parts = [p for p in path.split("/") if p != ""]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and kinds.by_path(group, version, rest[2]) is not None
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    rtype = kinds.by_path(group, version, rest[0])
    if rtype is None:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    tail = "/".join(rest[3:])
    if path.endswith("/") and sub == "proxy":
        tail += "/"
    return Route(rtype, namespace, name, sub, tail)


def field_manager(request: web.Request) -> str:
    manager = request.query.get("fieldManager")
    if manager:
        return manager
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/", 1)[0] or "unknown"


async def read_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
    if "protobuf" in content_type:
        # Typed kubectl commands (e.g. `kubectl create deployment`) send protobuf; the JSON-only
        # simulator says so instead of guessing. `kubectl apply/create -f` send JSON.
        raise ApiError(
            415,
            f"kubesim does not decode {content_type} request bodies; send JSON or YAML",
            reason="UnsupportedMediaType",
        )
    try:
        if content_type.endswith("yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"the body of the request was in an unknown format: {exc}") from exc


def wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


class KubeHandlers:
    def __init__(self, cluster: Cluster, subresources: dict[str, SubHandler]) -> None:
        self.cluster = cluster
        self.subresources = subresources

    # -- discovery -----------------------------------------------------------------------------

    async def discovery(self, request: web.Request) -> web.Response | None:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        kinds = self.cluster.kinds
        if path == "/api":
            host = f"{request.url.host}:{request.url.port}"
            return json_response(discovery.api_versions(host))
        if path == "/apis":
            return json_response(discovery.api_group_list(kinds))
        if len(parts) == 2 and parts[0] == "api":
            doc = discovery.resource_list(kinds, "", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(kinds, parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.resource_list(kinds, parts[1], parts[2])
        elif path == "/openapi/v3":
            doc = discovery.openapi_v3_root(kinds)
        elif len(parts) >= 4 and parts[:2] == ["openapi", "v3"]:
            group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4])
            doc = discovery.openapi_v3_group(kinds, group, version)
        else:
            return None
        if doc is None:
            raise ApiError(404, "the server could not find the requested resource")
        return json_response(doc)

    # -- dispatch ------------------------------------------------------------------------------

    async def handle(self, request: web.Request, route: Route) -> web.StreamResponse:
        if route.rtype.namespaced and route.namespace == "" and route.name:
            raise ApiError(404, "the server could not find the requested resource")
        if route.subresource and route.subresource not in ("status", "scale"):
            handler = self.subresources.get(route.subresource)
            if handler is None or route.subresource not in route.rtype.subresources:
                raise ApiError(404, "the server could not find the requested resource")
            return await handler(route, request)
        if route.subresource == "scale" and "scale" in route.rtype.subresources:
            return await self.scale(request, route)
        method = request.method
        if not route.name:
            if method == "GET":
                return await self.list_or_watch(request, route)
            if method == "POST":
                return await self.create(request, route)
            if method == "DELETE":
                return await self.delete_collection(request, route)
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if method == "GET":
            return self.get(request, route)
        if method == "PUT":
            return await self.update(request, route)
        if method == "PATCH":
            return await self.patch(request, route)
        if method == "DELETE":
            return await self.delete(request, route)
        raise ApiError(405, "the server does not allow this method on the requested resource")

    # -- verbs ---------------------------------------------------------------------------------

    def get(self, request: web.Request, route: Route) -> web.Response:
        obj = self.cluster.api.get(route.rtype, route.namespace, route.name)
        if wants_table(request) and not route.subresource:
            meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
            include = request.query.get("includeObject", "Metadata")
            strategy = self.cluster.kinds.of(route.rtype)
            return json_response(tables.table(strategy, [obj], meta, include))
        return json_response(obj)

    async def create(self, request: web.Request, route: Route) -> web.Response:
        body = await read_body(request)
        warnings = _checked(request, route, body)
        obj = self.cluster.api.create(
            route.rtype,
            route.namespace,
            body,
            manager=field_manager(request),
            dry_run=bool(request.query.get("dryRun")),
        )
        return json_response(obj, 201, warnings=warnings)

    async def update(self, request: web.Request, route: Route) -> web.Response:
        body = await read_body(request)
        warnings = _checked(request, route, body)
        obj = self.cluster.api.update(
            route.rtype,
            route.namespace,
            route.name,
            body,
            manager=field_manager(request),
            subresource=route.subresource,
            dry_run=bool(request.query.get("dryRun")),
        )
        return json_response(obj, warnings=warnings)

    async def patch(self, request: web.Request, route: Route) -> web.Response:
        patch_type = self._patch_type(request)
        if patch_type == "apply" and not request.query.get("fieldManager"):
            raise bad_request("PATCH, application/apply-patch+yaml requests must set fieldManager")
        body = await read_body(request)
        warnings: list[str] = []
        if patch_type == "apply" and not route.subresource:
            schema.check_apply(
                route.rtype.api_version,
                route.rtype.kind,
                route.name,
                body,
                validation=schema.field_validation(request.query),
            )
        elif patch_type in ("merge", "strategic"):
            warnings = _checked(request, route, body)
        api = self.cluster.api
        existed = api.store.get(route.rtype, route.key_namespace, route.name) is not None
        obj = api.patch(
            route.rtype,
            route.namespace,
            route.name,
            patch_type,
            body,
            manager=field_manager(request),
            force=request.query.get("force") in ("true", "1"),
            subresource=route.subresource,
            dry_run=bool(request.query.get("dryRun")),
        )
        return json_response(obj, 200 if existed else 201, warnings=warnings)

    @staticmethod
    def _patch_type(request: web.Request) -> str:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        patch_type = PATCH_TYPES.get(content_type)
        if patch_type is None:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted "
                f"media types include: {', '.join(PATCH_TYPES)}",
            )
        return patch_type

    async def delete(self, request: web.Request, route: Route) -> web.Response:
        options = await self._delete_options(request)
        obj = self.cluster.api.delete(route.rtype, route.namespace, route.name, options)
        store_obj = self.cluster.store.get(route.rtype, route.key_namespace, route.name)
        # Some kinds answer with the deleted object (ReturnDeletedObject), others a Status.
        if store_obj is not None or self.cluster.kinds.of(route.rtype).return_deleted_object:
            return json_response(obj)
        details = {
            "name": route.name,
            "kind": route.rtype.plural,
            "uid": obj["metadata"].get("uid"),
        }
        if route.rtype.group:
            details["group"] = route.rtype.group
        return json_response(success_status(details))

    async def delete_collection(self, request: web.Request, route: Route) -> web.Response:
        options = await self._delete_options(request)
        object_filter = make_filter(
            request.query.get("labelSelector"), request.query.get("fieldSelector")
        )
        namespace = route.namespace if route.rtype.namespaced and route.namespace else None
        items = []
        for obj in self.cluster.store.objects(route.rtype, namespace):
            if object_filter is None or object_filter(obj):
                meta = obj["metadata"]
                items.append(
                    self.cluster.api.delete(
                        route.rtype, meta.get("namespace", ""), meta["name"], options
                    )
                )
        return json_response(
            {
                "kind": route.rtype.list_kind,
                "apiVersion": route.rtype.api_version,
                "metadata": {"resourceVersion": str(self.cluster.store.resource_version)},
                "items": items,
            }
        )

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        body = await read_body(request) or {}
        query = request.query
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        preconditions = body.get("preconditions") or {}
        return DeleteOptions(
            grace_period=int(grace) if grace is not None else None,
            propagation=body.get("propagationPolicy") or query.get("propagationPolicy"),
            precondition_uid=preconditions.get("uid"),
            precondition_rv=preconditions.get("resourceVersion"),
            dry_run=bool(body.get("dryRun") or query.get("dryRun")),
        )

    # -- scale subresource ---------------------------------------------------------------------

    async def scale(self, request: web.Request, route: Route) -> web.Response:
        api = self.cluster.api
        obj = api.get(route.rtype, route.namespace, route.name)
        strategy = self.cluster.kinds.of(route.rtype)
        scale = strategy.to_scale(obj)
        if request.method == "GET":
            return json_response(scale)
        body = await read_body(request)
        if request.method == "PUT":
            new_scale = body if isinstance(body, dict) else {}
            rv = (new_scale.get("metadata") or {}).get("resourceVersion")
            if rv and rv != obj["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    f"Operation cannot be fulfilled on {route.rtype.plural}."
                    f'{route.rtype.group} "{route.name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                )
        elif request.method == "PATCH":
            from kubesim.patch import json_patch, merge_patch, strategic_merge

            patch_type = self._patch_type(request)
            new_scale = (
                json_patch(scale, body)
                if patch_type == "json"
                else merge_patch(scale, body)
                if patch_type == "merge"
                else strategic_merge(scale, body)
            )
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: '
                "Invalid value: must be greater than or equal to 0",
            )
        updated = api.patch(
            route.rtype,
            route.namespace,
            route.name,
            "merge",
            {"spec": {"replicas": replicas}},
            manager=field_manager(request),
            subresource="scale",
            dry_run=bool(request.query.get("dryRun")),
        )
        return json_response(strategy.to_scale(updated))

    # -- list and watch ------------------------------------------------------------------------

    async def list_or_watch(self, request: web.Request, route: Route) -> web.StreamResponse:
        query = request.query
        namespace = route.namespace if route.rtype.namespaced and route.namespace else None
        if namespace is not None:
            self.cluster.api.require_namespace(route.rtype, namespace)
        object_filter = make_filter(query.get("labelSelector"), query.get("fieldSelector"))
        if query.get("watch") in ("true", "1"):
            return await self.watch(request, route, namespace, object_filter)
        check_list_options(query)
        return self.list(request, route, namespace, object_filter)

    def list(
        self, request: web.Request, route: Route, namespace: str | None, object_filter: Any
    ) -> web.Response:
        query = request.query
        store = self.cluster.store
        rv = str(store.resource_version)
        entries: list[Entry] = [
            e
            for e in store.entries(route.rtype, namespace)
            if object_filter is None or object_filter(e.obj)
        ]
        start = _decode_continue(query.get("continue"))
        if start is not None:
            entries = [e for e in entries if _entry_key(e) > start]
        meta: JSON = {"resourceVersion": rv}
        limit = int(query.get("limit") or 0)
        if limit > 0 and len(entries) > limit:
            meta["continue"] = _encode_continue(_entry_key(entries[limit - 1]), rv)
            meta["remainingItemCount"] = len(entries) - limit
            entries = entries[:limit]
        if wants_table(request):
            include = query.get("includeObject", "Metadata")
            strategy = self.cluster.kinds.of(route.rtype)
            return json_response(tables.table(strategy, [e.obj for e in entries], meta, include))
        head = dumps(
            {"kind": route.rtype.list_kind, "apiVersion": route.rtype.api_version, "metadata": meta}
        )
        body = head[:-1] + b',"items":[' + b",".join(e.raw for e in entries) + b"]}"
        return web.Response(body=body, content_type="application/json")

    async def watch(
        self, request: web.Request, route: Route, namespace: str | None, object_filter: Any
    ) -> web.StreamResponse:
        query = request.query
        store = self.cluster.store
        # Invalid options are an error answer, before the stream starts (as upstream).
        start = watch_start(query, store.resource_version)
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = flag(query, "allowWatchBookmarks") is True
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        request[STREAMING] = True
        try:
            watcher = store.watch(
                route.rtype,
                namespace,
                object_filter,
                start.since,
                initial_events=start.initial_events,
                initial_events_end=start.end_bookmark,
            )
        except ApiError as exc:
            await response.write(dumps({"type": "ERROR", "object": exc.status()}) + b"\n")
            return response
        try:
            strategy = self.cluster.kinds.of(route.rtype) if wants_table(request) else None
            await self._pump(response, watcher, timeout, bookmarks, strategy)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.cluster.store.unwatch(watcher)
        return response

    async def _pump(
        self,
        response: web.StreamResponse,
        watcher: Watcher,
        timeout: float,
        bookmarks: bool,
        as_table: Strategy | None,
    ) -> None:
        """Stream the watcher's events (as Table rows of `as_table`'s columns when given)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = self.cluster.settings.bookmark_interval
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                item = await asyncio.wait_for(
                    watcher.queue.get(), min(remaining, interval) if bookmarks else remaining
                )
            except TimeoutError:
                if bookmarks and deadline - loop.time() > 0:
                    await response.write(self._bookmark(watcher.rtype))
                continue
            chunks = []
            while item is not None:
                kind, event = item
                chunks.append(
                    _event_line(
                        kind,
                        # A bookmark carries only a resourceVersion: never a Table row.
                        event.raw_object()
                        if as_table is None or kind == "BOOKMARK"
                        else dumps(tables.table(as_table, [event.obj], {})),
                    )
                )
                if watcher.queue.empty() or len(chunks) >= 200:
                    break
                item = watcher.queue.get_nowait()
            if chunks:
                await response.write(b"".join(chunks))
            if item is None:
                return

    def _bookmark(self, rtype: R.ResourceType) -> bytes:
        obj = {
            "kind": rtype.kind,
            "apiVersion": rtype.api_version,
            "metadata": {
                "resourceVersion": str(self.cluster.store.resource_version),
            },
        }
        return _event_line("BOOKMARK", dumps(obj))


def _event_line(kind: str, raw: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n"


def _entry_key(entry: Entry) -> str:
    meta = entry.obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _encode_continue(key: str, rv: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": key}).encode()).decode()


def _decode_continue(token: str | None) -> str | None:
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(data["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion "
            "(version meta.k8s.io/v1)"
        ) from exc


__all__ = ["KubeHandlers", "Route", "json_response", "not_found", "parse_route", "time"]
