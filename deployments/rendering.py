"""Rendering a service's mustache templates into the manifests Apollo applies.

Variables, lowest precedence first: the service's defaults, the environment's variables,
the group's variables, then Apollo's own (image, sha, service, environment, namespace,
availability, region, group, replicas), which templates cannot override. Values are not
HTML-escaped (that would corrupt YAML) and can never change a manifest's structure: see
render_documents.
"""

import copy
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import chevron
import yaml

# The labels moved to the bottom layer (environments.kube.labels); re-exported for the modules
# of deployments that import them from here.
from environments.kube.labels import LABEL_ENVIRONMENT as LABEL_ENVIRONMENT
from environments.kube.labels import LABEL_GROUP as LABEL_GROUP
from environments.kube.labels import LABEL_SERVICE as LABEL_SERVICE
from environments.kube.labels import LABEL_SHA as LABEL_SHA
from environments.kube.labels import MANAGED_BY as MANAGED_BY

# kind -> apiVersion Apollo knows how to apply (see environments.kube.APPLY_PATHS).
KNOWN_KINDS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "Ingress": "networking.k8s.io/v1",
    "ConfigMap": "v1",
    "Secret": "v1",
}
REDACTED = "<redacted>"
_TAG_OR_DIGEST = re.compile(r"(:[^/]+|@sha256:[0-9a-f]+)$")
# Limits against YAML and mustache bombs (a real manifest is far below each).
MAX_TEMPLATE_BYTES = 128 * 1024
MAX_RENDERED_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000
_VALUE_TAGS = {"variable", "no escape"}
_PLACEHOLDER = re.compile(r"apollo[0-9a-f]{16}v[0-9]+x")
_STR = "tag:yaml.org,2002:str"
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


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
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise RenderError(f"{name} template: larger than {MAX_TEMPLATE_BYTES} bytes")
    try:
        tokens = list(chevron.tokenizer.tokenize(text))
    except chevron.ChevronError as exc:
        raise RenderError(f"{name} template: {exc}") from None
    for kind, key in tokens:
        if kind == "partial":
            # SECURITY: a partial ({{> path}}) reads a file of the Apollo host by its path.
            raise RenderError(f"{name} template: partials ({{{{> {key}}}}}) are not allowed")
    return tokens


def missing_variables(tokens: Iterable[tuple[str, str]], variables: dict[str, Any]) -> list[str]:
    """Top-level {{names}} the variables do not define (names inside sections are skipped)."""
    missing, depth = [], 0
    for kind, key in tokens:
        if kind in {"section", "inverted section"}:
            depth += 1
        elif kind == "end":
            depth -= 1
        elif kind in _VALUE_TAGS and depth == 0 and key != "." and not _has(variables, key):
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
    """Render and parse every template.

    SECURITY: a variable value can never change the structure of a manifest. The mustache
    pass writes an opaque placeholder (letters and digits only) where a string value goes;
    the YAML is parsed with the placeholders, and each placeholder is then replaced inside the
    scalar that holds it. A value is therefore always (part of) one scalar, whatever quotes,
    newlines, `---`, `#`, brackets, anchors or aliases it contains. A placeholder alone in an
    unquoted position becomes a number or boolean when the value reads as a whole number or
    true/false (`replicas: {{replicas}}` with "3"), as the template author meant.
    """
    data = _plain_data(variables, "variables")
    documents: list[dict[str, Any]] = []
    for name, text in templates:
        tokens = _tokens(name, text)
        missing = missing_variables(tokens, data)
        if missing:
            raise RenderError(f"{name} template: undefined variables: {', '.join(missing)}")
        rendered, values = _Mustache(name).render(tokens, data)
        documents.extend(_parse(name, rendered, values))
    if not any(doc["kind"] == "Deployment" for doc in documents):
        raise RenderError("the templates must produce a Deployment")
    return documents


def _plain_data(value: Any, where: str, depth: int = 0) -> Any:
    """A copy made only of dict, list, str, int, float, bool and None: mustache sections then
    cannot reach Python attributes or callables."""
    if depth > MAX_DEPTH:
        raise RenderError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _plain_data(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_data(v, where, depth + 1) for v in value]
    raise RenderError(f"{where}: a {type(value).__name__} is not a template value")


class _Mustache:
    """A mustache renderer over chevron's tokens that looks names up in dicts only (never
    getattr, never partials) and writes string values as placeholders."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nonce = secrets.token_hex(8)
        self.values: dict[str, str] = {}
        self.size = 0

    def render(self, tokens: list[tuple[str, str]], data: Any) -> tuple[str, dict[str, str]]:
        tree, _ = self._tree(tokens, 0, 0)
        out: list[str] = []
        self._render(tree, [data], out)
        return "".join(out), self.values

    def _tree(self, tokens: list[tuple[str, str]], at: int, depth: int) -> tuple[list[Any], int]:
        if depth > MAX_DEPTH:
            raise RenderError(f"{self.name} template: sections nested too deeply")
        nodes: list[Any] = []
        while at < len(tokens):
            kind, key = tokens[at]
            at += 1
            if kind in {"section", "inverted section"}:
                children, at = self._tree(tokens, at, depth + 1)
                nodes.append((kind, key, children))
            elif kind == "end":
                return nodes, at
            elif kind in {"literal", *_VALUE_TAGS}:
                nodes.append((kind, key, None))
        return nodes, at

    def _render(self, nodes: list[Any], stack: list[Any], out: list[str]) -> None:
        for kind, key, children in nodes:
            if kind == "literal":
                self._write(out, key)
            elif kind in _VALUE_TAGS:
                self._write(out, self._value_text(key, self._lookup(key, stack)))
            elif kind == "inverted section":
                value = self._lookup(key, stack)
                if not value:
                    self._render(children, stack, out)
            else:
                value = self._lookup(key, stack)
                items = value if isinstance(value, list) else [value] if value else []
                for item in items:
                    self._render(children, [*stack, item], out)

    @staticmethod
    def _lookup(key: str, stack: list[Any]) -> Any:
        if key == ".":
            return stack[-1]
        first, *rest = key.split(".")
        for scope in reversed(stack):
            if isinstance(scope, dict) and first in scope:
                value = scope[first]
                break
        else:
            return None
        for part in rest:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    def _value_text(self, key: str, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, dict | list):
            raise RenderError(f"{self.name} template: {{{{{key}}}}} is not a single value")
        if not isinstance(value, str):
            return str(value)  # a number or a boolean: plain text YAML reads back as such
        placeholder = f"apollo{self.nonce}v{len(self.values)}x"
        self.values[placeholder] = value
        self.size += len(value.encode())
        return placeholder

    def _write(self, out: list[str], text: str) -> None:
        self.size += len(text.encode())
        if self.size > MAX_RENDERED_BYTES:
            raise RenderError(
                f"{self.name} template: renders larger than {MAX_RENDERED_BYTES} bytes"
            )
        out.append(text)


# libyaml's parser (PyYAML's C extension, in its wheels) when present: the same events and nodes,
# several times faster; parsing the rendered templates was a fifth of a deploy request's time.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_yaml_events(name: str, text: str) -> None:
    """Refuse YAML bombs: anchors and aliases, deep nesting, too many nodes.

    SECURITY: run on the text before it is composed, so an alias bomb is never expanded."""
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise RenderError(f"{name} template: YAML anchors and aliases are not allowed")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise RenderError(f"{name} template: nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    raise RenderError(f"{name} template: more than {MAX_NODES} YAML nodes")
    except yaml.YAMLError as exc:
        raise RenderError(f"{name} template is not valid YAML after rendering: {exc}") from None


def _parse(name: str, rendered: str, values: dict[str, str]) -> Iterator[dict[str, Any]]:
    check_yaml_events(name, rendered)
    try:
        nodes = list(yaml.compose_all(rendered, Loader=_LOADER))
        loaded = [_construct(_substitute(node, values)) for node in nodes]
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


def _substitute(node: yaml.Node | None, values: dict[str, str]) -> yaml.Node | None:
    """Put each value into the scalar that holds its placeholder (the structure is fixed)."""
    if isinstance(node, yaml.ScalarNode) and _PLACEHOLDER.search(node.value):
        whole = _PLACEHOLDER.fullmatch(node.value)
        # A plain scalar: style None from PyYAML's parser, "" from libyaml's.
        if whole and not node.style and node.tag == _STR and whole.group(0) in values:
            node.value = values[whole.group(0)]
            node.tag = _plain_tag(node.value)
        else:
            node.value = _PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), node.value)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _substitute(child, values)
    elif isinstance(node, yaml.MappingNode):
        for key, child in node.value:
            _substitute(key, values)
            _substitute(child, values)
    return node


def _plain_tag(value: str) -> str:
    if _INTEGER.fullmatch(value):
        return "tag:yaml.org,2002:int"
    if value in {"true", "false"}:
        return "tag:yaml.org,2002:bool"
    return _STR


def _construct(node: yaml.Node | None) -> Any:
    if node is None:
        return None
    return yaml.SafeLoader("").construct_document(node)


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
    spec = doc.setdefault("spec", {})
    if isinstance(spec.get("selector"), dict) and spec["selector"]:
        # SECURITY: a Service selects only its own service's pods. Another service's pods may
        # carry any label its template gives them (app: payments), but never this identity
        # label: finalize sets it on every pod template.
        spec["selector"][LABEL_SERVICE] = target.service
    if target.group:
        selector = spec.setdefault("selector", {})
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
