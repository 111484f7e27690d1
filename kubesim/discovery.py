"""/version, legacy discovery documents and a minimal OpenAPI v2/v3 answer."""

from __future__ import annotations

from typing import Any

from kubesim import resources as R
from kubesim.kinds import Kinds, Strategy

JSON = dict[str, Any]

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-kubesim"}

_SUB_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "log": ["get"],
    "exec": ["create", "get"],
    "attach": ["create", "get"],
    "portforward": ["create", "get"],
    "proxy": ["create", "delete", "get", "patch", "update"],
}


def version() -> JSON:
    return {
        **KUBE_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> JSON:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group_list(kinds: Kinds) -> JSON:
    groups = []
    for group, versions in kinds.group_versions().items():
        if not group:
            continue
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(kinds: Kinds, group: str) -> JSON | None:
    versions = kinds.group_versions().get(group)
    if not group or not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def _resource_entry(t: R.ResourceType) -> JSON:
    entry: JSON = {
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": list(t.verbs),
    }
    if t.short_names:
        entry["shortNames"] = list(t.short_names)
    if t.categories:
        entry["categories"] = list(t.categories)
    return entry


def _sub_entry(strategy: Strategy, sub: str) -> JSON:
    t = strategy.resource
    entry: JSON = {
        "name": f"{t.plural}/{sub}",
        "singularName": "",
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": _SUB_VERBS.get(sub, ["get"]),
    }
    if sub == "scale":
        entry.update({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    else:
        entry["kind"] = strategy.subresource_kinds.get(sub, t.kind)
    return entry


def resource_list(kinds: Kinds, group: str, version: str) -> JSON | None:
    types = kinds.types_in(group, version)
    if not types:
        return None
    resources: list[JSON] = []
    for t in types:
        resources.append(_resource_entry(t))
        resources += [_sub_entry(kinds.of(t), sub) for sub in t.subresources]
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def openapi_v3_root(kinds: Kinds) -> JSON:
    """Index of per-group-version documents, as /openapi/v3 serves."""
    paths: JSON = {}
    for group, versions in kinds.group_versions().items():
        for v in versions:
            key = f"apis/{group}/{v}" if group else f"api/{v}"
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash=kubesim"}
    return {"paths": paths}


def _gvk(t: R.ResourceType) -> list[JSON]:
    return [{"group": t.group, "version": t.version, "kind": t.kind}]


def openapi_v3_group(kinds: Kinds, group: str, version: str) -> JSON | None:
    """A small but valid OpenAPI 3 document: schemas are open objects, paths list the verbs.

    kubectl reads the `fieldValidation` parameter of PATCH operations to decide whether the
    server validates fields itself, so it is declared on every operation.
    """
    types = kinds.types_in(group, version)
    if not types:
        return None
    field_validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}
    schemas: JSON = {}
    paths: JSON = {}
    for t in types:
        ref_name = f"io.k8s.kubesim.{t.group or 'core'}.{t.version}.{t.kind}"
        schemas[ref_name] = {"type": "object", "x-kubernetes-group-version-kind": _gvk(t)}
        op = {
            "parameters": [field_validation],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-group-version-kind": _gvk(t)[0],
        }
        item_path = t.base_path("{namespace}") + "/{name}"
        paths[item_path] = {"get": dict(op), "put": dict(op), "patch": dict(op), "delete": dict(op)}
        paths[t.base_path("{namespace}")] = {"get": dict(op), "post": dict(op)}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }
