"""Rendering a service's mustache templates into the manifests Apollo applies.

Variables, lowest precedence first: the service's defaults, the environment's variables,
the group's variables, then Apollo's own (image, sha, service, environment, namespace,
availability, region, group, replicas), which templates cannot override. Values are
inserted verbatim: HTML escaping, mustache's default, would corrupt YAML.
"""

import copy
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import chevron
import yaml

# kind -> apiVersion Apollo knows how to apply (see environments.kube.APPLY_PATHS).
KNOWN_KINDS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "Ingress": "networking.k8s.io/v1",
    "ConfigMap": "v1",
    "Secret": "v1",
}
MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_SERVICE = "apollo.io/service"
LABEL_ENVIRONMENT = "apollo.io/environment"
LABEL_GROUP = "apollo.io/group"
LABEL_SHA = "apollo.io/commit-sha"
REDACTED = "<redacted>"
_TAG_OR_DIGEST = re.compile(r"(:[^/]+|@sha256:[0-9a-f]+)$")


class RenderError(Exception):
    """The templates cannot produce valid manifests; the message says where and why."""


@dataclass(frozen=True)
class Target:
    """What a rendering is for: every value Apollo itself provides."""

    service: str
    image_repository: str
    sha: str
    environment: str
    namespace: str
    availability: str
    region: str
    node_port_coefficient: int
    group: str = ""
    replicas: int | None = None


def template_sources(
    deployment: str, service: str = "", ingress: str = "", extra: str = ""
) -> list[tuple[str, str]]:
    named = [("deployment", deployment), ("service", service), ("ingress", ingress)]
    named.append(("extra", extra))
    return [(name, text) for name, text in named if text.strip()]


def build_variables(target: Target, *layers: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for layer in layers:
        variables.update(layer)
    replicas = target.replicas if target.replicas is not None else variables.get("replicas", 1)
    variables.update(
        image=f"{target.image_repository}:{target.sha}",
        sha=target.sha,
        service=target.service,
        environment=target.environment,
        namespace=target.namespace,
        availability=target.availability,
        region=target.region,
        group=target.group,
        replicas=replicas,
    )
    return variables


def _tokens(name: str, text: str) -> list[tuple[str, str]]:
    try:
        tokens = list(chevron.tokenizer.tokenize(text))
    except chevron.ChevronError as exc:
        raise RenderError(f"{name} template: {exc}") from None
    # 'no escape' renders like {{{var}}}: values go into YAML as they are.
    return [("no escape", key) if kind == "variable" else (kind, key) for kind, key in tokens]


def missing_variables(tokens: Iterable[tuple[str, str]], variables: dict[str, Any]) -> list[str]:
    """Top-level {{names}} the variables do not define (names inside sections are skipped)."""
    missing, depth = [], 0
    for kind, key in tokens:
        if kind in {"section", "inverted section"}:
            depth += 1
        elif kind == "end":
            depth -= 1
        elif kind == "no escape" and depth == 0 and key != "." and not _has(variables, key):
            missing.append(key)
    return sorted(set(missing))


def _has(variables: dict[str, Any], dotted: str) -> bool:
    value: Any = variables
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def render_documents(
    templates: list[tuple[str, str]], variables: dict[str, Any]
) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for name, text in templates:
        tokens = _tokens(name, text)
        missing = missing_variables(tokens, variables)
        if missing:
            raise RenderError(f"{name} template: undefined variables: {', '.join(missing)}")
        rendered = chevron.render(tokens, variables)
        documents.extend(_parse(name, rendered))
    if not any(doc["kind"] == "Deployment" for doc in documents):
        raise RenderError("the templates must produce a Deployment")
    return documents


def _parse(name: str, rendered: str) -> Iterator[dict[str, Any]]:
    try:
        loaded = list(yaml.safe_load_all(rendered))
    except yaml.YAMLError as exc:
        raise RenderError(f"{name} template is not valid YAML after rendering: {exc}") from None
    for index, doc in enumerate(loaded):
        if doc is None:
            continue
        where = f"{name} template, document {index + 1}"
        if not isinstance(doc, dict):
            raise RenderError(f"{where}: a manifest must be a mapping")
        kind = doc.get("kind")
        if kind not in KNOWN_KINDS:
            known = ", ".join(sorted(KNOWN_KINDS))
            raise RenderError(f"{where}: kind {kind!r} is not one Apollo applies ({known})")
        if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
            raise RenderError(f"{where}: metadata.name is required")
        yield doc


def finalize(documents: list[dict[str, Any]], target: Target) -> list[dict[str, Any]]:
    """Apollo's own changes: namespace, identity labels, name suffix, image tags, nodePorts."""
    result = []
    labels = {
        MANAGED_BY: "apollo",
        LABEL_SERVICE: target.service,
        LABEL_ENVIRONMENT: target.environment,
        LABEL_SHA: target.sha,
    }
    if target.group:
        labels[LABEL_GROUP] = target.group
    for original in documents:
        doc = copy.deepcopy(original)
        doc.setdefault("apiVersion", KNOWN_KINDS[doc["kind"]])
        meta = doc["metadata"]
        meta["namespace"] = target.namespace
        if target.group:
            meta["name"] = f"{meta['name']}-{target.group}"
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        if doc["kind"] == "Deployment":
            _finalize_deployment(doc, target, labels)
        elif doc["kind"] == "Service":
            _finalize_service(doc, target)
        result.append(doc)
    return result


def _finalize_deployment(doc: dict[str, Any], target: Target, labels: dict[str, str]) -> None:
    spec = doc.setdefault("spec", {})
    template = spec.setdefault("template", {})
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **labels}
    if target.group:
        # Each group's Deployment must select only its own pods.
        selector = spec.setdefault("selector", {}).setdefault("matchLabels", {})
        selector[LABEL_GROUP] = target.group
    pod_spec = template.get("spec") or {}
    for key in ("containers", "initContainers"):
        for container in pod_spec.get(key) or []:
            image = str(container.get("image", ""))
            if image and not _TAG_OR_DIGEST.search(image.rsplit("/", 1)[-1]):
                # Compatibility with the original Apollo: an untagged image runs this sha.
                container["image"] = f"{image}:{target.sha}"


def _finalize_service(doc: dict[str, Any], target: Target) -> None:
    if target.group:
        selector = doc.setdefault("spec", {}).setdefault("selector", {})
        selector[LABEL_GROUP] = target.group
    for port in (doc.get("spec") or {}).get("ports") or []:
        if "nodePort" in port and target.node_port_coefficient:
            port["nodePort"] = int(port["nodePort"]) + target.node_port_coefficient


def to_yaml(documents: list[dict[str, Any]], *, redact_secrets: bool = True) -> str:
    shown = [_redacted(doc) if redact_secrets else doc for doc in documents]
    return yaml.safe_dump_all(shown, sort_keys=False, default_flow_style=False)


def _redacted(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("kind") != "Secret":
        return doc
    # SECURITY: secret values never reach the database or a page.
    doc = copy.deepcopy(doc)
    for key in ("data", "stringData"):
        if isinstance(doc.get(key), dict):
            doc[key] = dict.fromkeys(doc[key], REDACTED)
    return doc
