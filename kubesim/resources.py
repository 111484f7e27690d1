"""The resource types kubesim serves, as discovery and routing see them."""

from __future__ import annotations

from dataclasses import dataclass, field

READ_VERBS = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Subresources served besides the object itself ("status", "scale", "log", ...).
    subresources: tuple[str, ...] = ()
    # Types whose spec changes bump metadata.generation, and types with a status the object
    # itself may not change (read by the base Strategy, as the real registry strategies do).
    has_generation: bool = False
    has_status: bool = True
    verbs: tuple[str, ...] = ALL_VERBS
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def base_path(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


NAMESPACES = ResourceType(
    "",
    "v1",
    "Namespace",
    "namespaces",
    namespaced=False,
    short_names=("ns",),
    subresources=("status",),
)
PODS = ResourceType(
    "",
    "v1",
    "Pod",
    "pods",
    short_names=("po",),
    categories=("all",),
    subresources=("status", "log", "exec", "proxy", "attach", "portforward"),
)
SERVICES = ResourceType(
    "",
    "v1",
    "Service",
    "services",
    short_names=("svc",),
    categories=("all",),
    subresources=("status", "proxy"),
)
CONFIGMAPS = ResourceType(
    "", "v1", "ConfigMap", "configmaps", short_names=("cm",), has_status=False
)
SECRETS = ResourceType("", "v1", "Secret", "secrets", has_status=False)
EVENTS = ResourceType("", "v1", "Event", "events", short_names=("ev",), has_status=False)
NODES = ResourceType(
    "", "v1", "Node", "nodes", namespaced=False, short_names=("no",), subresources=("status",)
)
DEPLOYMENTS = ResourceType(
    "apps",
    "v1",
    "Deployment",
    "deployments",
    short_names=("deploy",),
    categories=("all",),
    subresources=("status", "scale"),
    has_generation=True,
)
REPLICASETS = ResourceType(
    "apps",
    "v1",
    "ReplicaSet",
    "replicasets",
    short_names=("rs",),
    categories=("all",),
    subresources=("status", "scale"),
    has_generation=True,
)
INGRESSES = ResourceType(
    "networking.k8s.io",
    "v1",
    "Ingress",
    "ingresses",
    short_names=("ing",),
    subresources=("status",),
    has_generation=True,
)

# The built-in types; kinds.builtin_kinds() registers one strategy for each, and routing and
# discovery read the registered types from there (a cluster may register more).
ALL_TYPES: tuple[ResourceType, ...] = (
    NAMESPACES,
    PODS,
    SERVICES,
    CONFIGMAPS,
    SECRETS,
    EVENTS,
    NODES,
    DEPLOYMENTS,
    REPLICASETS,
    INGRESSES,
)
