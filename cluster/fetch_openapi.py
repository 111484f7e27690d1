"""Fetch the real API server's published OpenAPI v3 and write kubesim's trimmed copy.

    .venv/bin/python cluster/fetch_openapi.py [--kubeconfig var/kubernetes.kubeconfig]

Reads /openapi/v3/<group-version> from the running control plane (`make cluster`) through
var/bin/kubectl (built from the same pins), keeps the schemas of the kinds kubesim serves and
everything they reference, drops descriptions and other prose, and writes kubesim/openapi.json.
kubesim validates fields against it (kubesim/schema.py): rules come from the real server, not
from our hands. Re-run after bumping the pins in cluster/go.mod and commit the result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "kubesim" / "openapi.json"
KUBECTL = ROOT / "var" / "bin" / "kubectl"
# The keys of a schema kubesim's field validation reads; everything else is prose or unused.
KEEP = (
    "type",
    "properties",
    "items",
    "additionalProperties",
    "$ref",
    "allOf",
    "format",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-group-version-kind",
    "x-kubernetes-embedded-resource",
)
REF_PREFIX = "#/components/schemas/"


def fetch(kubeconfig: Path, path: str) -> Any:
    out = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "--raw", path],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def trim(schema: Any) -> Any:
    if isinstance(schema, list):
        return [trim(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept: dict[str, Any] = {}
    for key in KEEP:
        if key not in schema:
            continue
        value = schema[key]
        if key == "properties":
            kept[key] = {name: trim(sub) for name, sub in sorted(value.items())}
        elif key == "$ref":
            kept[key] = value.removeprefix(REF_PREFIX)
        elif key in ("items", "additionalProperties", "allOf"):
            kept[key] = trim(value)
        else:
            kept[key] = value
    return kept


def refs(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref":
                found.add(value)
            else:
                found |= refs(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= refs(item)
    return found


def main(argv: list[str] | None = None) -> int:
    from kubesim import resources

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, default=ROOT / "var/kubernetes.kubeconfig")
    args = parser.parse_args(argv)

    served = resources.ALL_TYPES
    kinds: dict[str, str] = {}
    schemas: dict[str, Any] = {}
    for api_version in sorted({rtype.api_version for rtype in served}):
        root = "api" if "/" not in api_version else "apis"
        document = fetch(args.kubeconfig, f"/openapi/v3/{root}/{api_version}")
        components = document["components"]["schemas"]
        for name, schema in components.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                gv = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
                if gv == api_version and any(
                    rtype.kind == gvk["kind"] and rtype.api_version == gv for rtype in served
                ):
                    kinds[f"{gv}/{gvk['kind']}"] = name
        todo = [kinds[key] for key in kinds if key.rsplit("/", 1)[0] == api_version]
        while todo:
            name = todo.pop()
            if name in schemas:
                continue
            schemas[name] = trim(components[name])
            todo.extend(refs(schemas[name]) - set(schemas))
    version = fetch(args.kubeconfig, "/version")["gitVersion"]
    OUT.write_text(
        json.dumps(
            {
                "source": f"kube-apiserver {version} /openapi/v3 (cluster/fetch_openapi.py)",
                "kinds": dict(sorted(kinds.items())),
                "schemas": dict(sorted(schemas.items())),
            },
            indent=1,
            sort_keys=False,
        )
        + "\n"
    )
    print(f"{OUT.relative_to(ROOT)}: {len(kinds)} kinds, {len(schemas)} schemas from {version}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
