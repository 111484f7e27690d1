"""Parity: the same scripted kubectl and official-client calls against kubesim and the real server.

Every case is a short script run in a fresh namespace of each cluster. Its answer is reduced to
a *shape*: status code, `kind`, the `reason` of a Status, the top-level keys, the Warning header's
gist, kubectl's exit code and the `Error from server (Reason)` it prints; never values such as
uids, timestamps or resourceVersions. Each case states the answer the real server gives
(kube-apiserver v1.37.2, the pins of cluster/go.mod), so the kubesim half checks kubesim against
it on every run; with `APOLLO_TEST_CLUSTER=kubernetes` (cluster/ci.sh) the real control plane runs
the same scripts and both shapes are compared.

KNOWN_DIFFERENCES lists the cases where kubesim still answers otherwise, with what it answers;
kubesim/README.md ("Known differences") says the same. Keep it short: fix kubesim, then strike
the entry (a difference that went away fails the test so that the list keeps shrinking).
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubesim.testing import run_kubesim
from tests.cluster import control_plane

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / "var" / "bin" / "kubectl"

JSON = dict[str, Any]


@dataclass(frozen=True)
class Shape:
    """What is compared: never uids, timestamps, resourceVersions or generated names."""

    code: int
    kind: str = ""
    reason: str = ""
    keys: tuple[str, ...] = ()
    warning: str = ""
    extra: tuple[tuple[str, Any], ...] = field(default=())


@dataclass
class Side:
    name: str
    api: Any  # kubernetes.client.ApiClient
    kubeconfig: Path
    namespace: str

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, JSON, dict[str, str]]:
        """One REST call through the official client; answers (status, JSON body, headers)."""
        path = path.replace("{ns}", self.namespace)
        method_, url, header_params, body_, _ = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            body=body,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(method_, url, header_params=header_params, body=body_)
            response.read()
            status, data, headers = response.status, response.data, response.getheaders()
        except ApiException as exc:
            status, data, headers = exc.status, exc.body, exc.headers or {}
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {"_text": data.decode(errors="replace") if isinstance(data, bytes) else data}
        return int(status), answer, {k.lower(): v for k, v in dict(headers).items()}

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def shape(status: int, answer: JSON, headers: dict[str, str] | None = None, **extra: Any) -> Shape:
    warning = (headers or {}).get("warning", "")
    gist = re.sub(r'^\d+ \S+ "|"$', "", warning).replace('\\"', '"')
    return Shape(
        code=status,
        kind=str(answer.get("kind", "")),
        reason=str(answer.get("reason", "")) if answer.get("kind") == "Status" else "",
        keys=tuple(sorted(answer)),
        warning=gist,
        extra=tuple(sorted(extra.items())),
    )


def kubectl_shape(result: subprocess.CompletedProcess[str], **extra: Any) -> Shape:
    """kubectl's exit code and the reason of the server's error it prints."""
    found = re.search(r"Error from server \((\w+)\)", result.stderr)
    return Shape(
        code=result.returncode,
        reason=found.group(1) if found else "",
        extra=tuple(sorted(extra.items())),
    )


# -- The scripts ---------------------------------------------------------------------------------

STATUS_KEYS = ("apiVersion", "code", "details", "kind", "message", "metadata", "reason", "status")
BARE_STATUS_KEYS = ("apiVersion", "code", "kind", "message", "metadata", "reason", "status")
OBJECT_KEYS = ("apiVersion", "data", "kind", "metadata")
DEPLOYMENT_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")


def configmap(name: str, **data: str) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(name: str, *, replicas: int = 1, **spec: Any) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/p:1"}]},
            },
            **spec,
        },
    }


CM = "/api/v1/namespaces/{ns}/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/{ns}/deployments"
APPLY = "application/apply-patch+yaml"


def create_and_get(side: Side) -> list[Shape]:
    created = side.call("POST", CM, body=configmap("one", a="1"))
    got = side.call("GET", CM + "/one")
    listed = side.call("GET", CM)
    return [shape(*created), shape(*got), shape(listed[0], {"kind": listed[1].get("kind")})]


def not_found(side: Side) -> list[Shape]:
    return [shape(*side.call("GET", CM + "/nothing-here"))]


def already_exists(side: Side) -> list[Shape]:
    side.call("POST", CM, body=configmap("twice"))
    return [shape(*side.call("POST", CM, body=configmap("twice")))]


def stale_update(side: Side) -> list[Shape]:
    _, first, _ = side.call("POST", CM, body=configmap("stale", a="1"))
    version = first["metadata"]["resourceVersion"]
    side.call(
        "PATCH",
        CM + "/stale",
        body={"data": {"a": "2"}},
        content_type="application/merge-patch+json",
    )
    body = configmap("stale", a="3")
    body["metadata"]["resourceVersion"] = version
    return [shape(*side.call("PUT", CM + "/stale", body=body))]


def invalid_name(side: Side) -> list[Shape]:
    return [shape(*side.call("POST", CM, body=configmap("Not_A_Name")))]


def unknown_field_strict(side: Side) -> list[Shape]:
    body = deployment("strict")
    body["spec"]["replcas"] = 2
    refused = side.call("POST", DEPLOY, body=body, query=[("fieldValidation", "Strict")])
    stored = side.call("GET", DEPLOY + "/strict")
    return [shape(*refused), shape(stored[0], {})]


def unknown_field_warn(side: Side) -> list[Shape]:
    body = deployment("warned")
    body["spec"]["replcas"] = 2
    created = side.call("POST", DEPLOY, body=body, query=[("fieldValidation", "Warn")])
    _, stored, _ = side.call("GET", DEPLOY + "/warned")
    return [shape(*created), shape(200, {}, stored_unknown="replcas" in stored.get("spec", {}))]


def apply_misspelt(side: Side) -> list[Shape]:
    body = deployment("misspelt")
    body["spec"]["replcas"] = 2
    query = [("fieldManager", "parity"), ("fieldValidation", "Strict")]
    applied = side.call(
        "PATCH", DEPLOY + "/misspelt", body=yaml.safe_dump(body), query=query, content_type=APPLY
    )
    stored = side.call("GET", DEPLOY + "/misspelt")
    return [shape(applied[0], {"kind": applied[1].get("kind")}), shape(stored[0], {})]


def apply_stale_resource_version(side: Side) -> list[Shape]:
    query = [("fieldManager", "parity")]
    body = deployment("versioned")
    _, first, _ = side.call(
        "PATCH", DEPLOY + "/versioned", body=yaml.safe_dump(body), query=query, content_type=APPLY
    )
    side.call(
        "PATCH",
        DEPLOY + "/versioned",
        body={"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json",
    )
    body["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    return [
        shape(
            *side.call(
                "PATCH",
                DEPLOY + "/versioned",
                body=yaml.safe_dump(body),
                query=query,
                content_type=APPLY,
            )
        )
    ]


def apply_conflict_after_scale(side: Side) -> list[Shape]:
    body = deployment("scaled", replicas=1)
    query = [("fieldManager", "parity")]
    side.call(
        "PATCH", DEPLOY + "/scaled", body=yaml.safe_dump(body), query=query, content_type=APPLY
    )
    scaled = side.kubectl("scale", "deployment/scaled", "--replicas=3")
    body["spec"]["replicas"] = 2
    conflict = side.call(
        "PATCH", DEPLOY + "/scaled", body=yaml.safe_dump(body), query=query, content_type=APPLY
    )
    forced = side.call(
        "PATCH",
        DEPLOY + "/scaled",
        body=yaml.safe_dump(body),
        query=[*query, ("force", "true")],
        content_type=APPLY,
    )
    causes = conflict[1].get("details", {}).get("causes", [])
    return [
        kubectl_shape(scaled),
        shape(*conflict, fields=tuple(c.get("field") for c in causes)),
        shape(
            forced[0],
            {"kind": forced[1].get("kind")},
            replicas=forced[1].get("spec", {}).get("replicas"),
        ),
    ]


def immutable_selector(side: Side) -> list[Shape]:
    side.call("POST", DEPLOY, body=deployment("fixed"))
    labels = {"app": "fixed", "tier": "x"}
    change = {
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}
    }
    changed = side.call(
        "PATCH", DEPLOY + "/fixed", body=change, content_type="application/merge-patch+json"
    )
    return [shape(*changed)]


def immutable_cluster_ip(side: Side) -> list[Shape]:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "fixed-ip"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
    }
    _, created, _ = side.call("POST", "/api/v1/namespaces/{ns}/services", body=service)
    ip = created["spec"]["clusterIP"]
    other = ip.rsplit(".", 1)[0] + "." + str((int(ip.rsplit(".", 1)[1]) + 7) % 250 + 2)
    changed = side.call(
        "PATCH",
        "/api/v1/namespaces/{ns}/services/fixed-ip",
        body={"spec": {"clusterIP": other, "clusterIPs": [other]}},
        content_type="application/merge-patch+json",
    )
    return [shape(*changed)]


def scale_subresource(side: Side) -> list[Shape]:
    side.call("POST", DEPLOY, body=deployment("scalable", replicas=1))
    got = side.call("GET", DEPLOY + "/scalable/scale")
    put = side.call(
        "PUT",
        DEPLOY + "/scalable/scale",
        body={"metadata": {"name": "scalable"}, "spec": {"replicas": 3}},
    )
    negative = side.call(
        "PATCH",
        DEPLOY + "/scalable/scale",
        body={"spec": {"replicas": -1}},
        content_type="application/merge-patch+json",
    )
    return [
        shape(got[0], {"kind": got[1].get("kind"), "apiVersion": got[1].get("apiVersion")}),
        shape(put[0], {"kind": put[1].get("kind")}, replicas=put[1]["spec"]["replicas"]),
        shape(negative[0], {"kind": negative[1].get("kind"), "reason": negative[1].get("reason")}),
    ]


def delete_answers(side: Side) -> list[Shape]:
    side.call("POST", CM, body=configmap("gone", a="1"))
    deleted = side.call("DELETE", CM + "/gone")
    again = side.call("DELETE", CM + "/gone")
    return [shape(deleted[0], {"kind": deleted[1].get("kind")}), shape(*again)]


def invalid_quantity(side: Side) -> list[Shape]:
    body = deployment("greedy")
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": "lots"}}
    refused = side.call("POST", DEPLOY, body=body)
    stored = side.call("GET", DEPLOY + "/greedy")
    return [shape(refused[0], {"kind": refused[1].get("kind")}), shape(stored[0], {})]


def dry_run_scale(side: Side) -> list[Shape]:
    side.call("POST", DEPLOY, body=deployment("dry", replicas=1))
    result = side.kubectl("scale", "deployment/dry", "--replicas=4", "--dry-run=server")
    _, stored, _ = side.call("GET", DEPLOY + "/dry")
    return [kubectl_shape(result, replicas=stored["spec"]["replicas"])]


def dry_run_create(side: Side) -> list[Shape]:
    created = side.call("POST", CM, body=configmap("dry", a="1"), query=[("dryRun", "All")])
    stored = side.call("GET", CM + "/dry")
    return [shape(*created), shape(stored[0], {})]


def kubectl_create_configmap(side: Side) -> list[Shape]:
    """Typed `kubectl create` commands send protobuf bodies."""
    result = side.kubectl("create", "configmap", "typed", "--from-literal=a=1")
    stored = side.call("GET", CM + "/typed")
    return [kubectl_shape(result), shape(stored[0], {})]


def kubectl_apply_and_get(side: Side, tmp_path: Path) -> list[Shape]:
    manifest = tmp_path / f"{side.name}.yaml"
    manifest.write_text(yaml.safe_dump(deployment("applied")))
    applied = side.kubectl("apply", "--server-side", "-f", str(manifest))
    got = side.kubectl("get", "deployment", "applied", "-o", "json")
    return [
        kubectl_shape(applied),
        kubectl_shape(got, kind=json.loads(got.stdout or "{}").get("kind")),
    ]


def kubectl_delete_missing(side: Side) -> list[Shape]:
    return [kubectl_shape(side.kubectl("delete", "configmap", "never-was"))]


Script = Callable[..., list[Shape]]

# The real server's answers (kube-apiserver v1.37.2), written down.
S = STATUS_KEYS
CASES: dict[str, tuple[Script, list[Shape]]] = {
    "create, get and list": (
        create_and_get,
        [
            Shape(201, "ConfigMap", keys=OBJECT_KEYS),
            Shape(200, "ConfigMap", keys=OBJECT_KEYS),
            Shape(200, "ConfigMapList", keys=("kind",)),
        ],
    ),
    "get of a missing object": (not_found, [Shape(404, "Status", "NotFound", S)]),
    "create of an existing name": (already_exists, [Shape(409, "Status", "AlreadyExists", S)]),
    "update with a stale resourceVersion": (stale_update, [Shape(409, "Status", "Conflict", S)]),
    "invalid name": (invalid_name, [Shape(422, "Status", "Invalid", S)]),
    "unknown field, fieldValidation=Strict": (
        unknown_field_strict,
        [
            Shape(400, "Status", "BadRequest", BARE_STATUS_KEYS),
            Shape(404),
        ],
    ),
    "unknown field, fieldValidation=Warn": (
        unknown_field_warn,
        [
            Shape(201, "Deployment", keys=DEPLOYMENT_KEYS, warning='unknown field "spec.replcas"'),
            Shape(200, extra=(("stored_unknown", False),)),
        ],
    ),
    "server-side apply of a misspelt field": (
        apply_misspelt,
        [
            Shape(500, "Status", keys=("kind",)),
            Shape(404),
        ],
    ),
    "server-side apply with a stale resourceVersion": (
        apply_stale_resource_version,
        [
            Shape(409, "Status", "Conflict", S),
        ],
    ),
    "server-side apply after kubectl scale": (
        apply_conflict_after_scale,
        [
            Shape(0),
            Shape(409, "Status", "Conflict", S, extra=(("fields", (".spec.replicas",)),)),
            Shape(200, "Deployment", keys=("kind",), extra=(("replicas", 2),)),
        ],
    ),
    "immutable selector": (immutable_selector, [Shape(422, "Status", "Invalid", S)]),
    "immutable clusterIP": (immutable_cluster_ip, [Shape(422, "Status", "Invalid", S)]),
    "the scale subresource": (
        scale_subresource,
        [
            Shape(200, "Scale", keys=("apiVersion", "kind")),
            Shape(200, "Scale", keys=("kind",), extra=(("replicas", 3),)),
            Shape(422, "Status", "Invalid", keys=("kind", "reason")),
        ],
    ),
    "delete, then delete again": (
        delete_answers,
        [
            Shape(200, "Status", keys=("kind",)),
            Shape(404, "Status", "NotFound", S),
        ],
    ),
    "an invalid quantity": (invalid_quantity, [Shape(400, "Status", keys=("kind",)), Shape(404)]),
    "kubectl scale --dry-run=server": (dry_run_scale, [Shape(0, extra=(("replicas", 1),))]),
    "create with dryRun=All": (
        dry_run_create,
        [
            Shape(201, "ConfigMap", keys=OBJECT_KEYS),
            Shape(404),
        ],
    ),
    "kubectl create configmap (protobuf)": (kubectl_create_configmap, [Shape(0), Shape(200)]),
    "kubectl apply --server-side, get -o json": (
        kubectl_apply_and_get,
        [
            Shape(0),
            Shape(0, extra=(("kind", "Deployment"),)),
        ],
    ),
    "kubectl delete of a missing object": (kubectl_delete_missing, [Shape(1, reason="NotFound")]),
}

# Where kubesim still answers otherwise: case -> what kubesim answers instead.
KNOWN_DIFFERENCES: dict[str, list[Shape]] = {
    # kubesim refuses protobuf bodies (415); the real server decodes them.
    "kubectl create configmap (protobuf)": [Shape(1), Shape(404)],
}


# -- Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clusters(
    kubesim: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Any, Path]]]:
    """kubesim always; the real control plane too when the switch selects it."""
    if control_plane.selected() == "kubernetes":
        with run_kubesim(tmp_dir=tmp_path_factory.mktemp("parity-kubesim")) as sim:
            yield {
                "kubesim": (sim, sim.kubeconfig_path),
                "kubernetes": (kubesim, kubesim.kubeconfig_path),
            }
    else:
        yield {"kubesim": (kubesim, kubesim.kubeconfig_path)}


@pytest.fixture
def sides(clusters: dict[str, tuple[Any, Path]]) -> Iterator[list[Side]]:
    made: list[Side] = []
    namespace = f"parity-{uuid.uuid4().hex[:8]}"
    try:
        for name, (handle, kubeconfig) in clusters.items():
            api = handle.api_client()
            client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
            made.append(Side(name, api, kubeconfig, namespace))
        yield made
    finally:
        for side in made:
            client.CoreV1Api(side.api).delete_namespace(namespace)
            side.api.close()


needs_kubectl = pytest.mark.skipif(
    not KUBECTL.exists(), reason="var/bin/kubectl is built by cluster/build.sh (make cluster)"
)


@needs_kubectl
@pytest.mark.parametrize("case", list(CASES))
def test_kubesim_answers_as_the_real_server_does(
    case: str, sides: list[Side], tmp_path: Path
) -> None:
    script, expected = CASES[case]
    answers: dict[str, list[Shape]] = {}
    for side in sides:
        takes_tmp = "tmp_path" in script.__code__.co_varnames[: script.__code__.co_argcount]
        answers[side.name] = script(side, tmp_path) if takes_tmp else script(side)

    if "kubernetes" in answers:
        assert answers["kubernetes"] == expected, "the real server's answer changed: update CASES"
    if case in KNOWN_DIFFERENCES:
        assert answers["kubesim"] == KNOWN_DIFFERENCES[case], (
            "kubesim's known difference changed (fixed? strike it from KNOWN_DIFFERENCES "
            "and from kubesim/README.md)"
        )
    else:
        assert answers["kubesim"] == expected, answers["kubesim"]
