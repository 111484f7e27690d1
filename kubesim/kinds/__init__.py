"""The kinds kubesim serves, each by one strategy, registered in one place (`builtin_kinds`).

Routing, discovery, the object API and the garbage collector read the served types and their
behaviour from a `Kinds` held by the cluster; serving a new kind is registering one `Strategy`
(its `resource` names group, version, kind, plural and subresources):

    kinds = builtin_kinds()
    kinds.register(WidgetStrategy())
"""

from __future__ import annotations

from collections.abc import Iterable

from kubesim.kinds.apps_workloads import DeploymentStrategy, ReplicaSetStrategy
from kubesim.kinds.core_misc import ConfigMapStrategy, EventStrategy, NodeStrategy, SecretStrategy
from kubesim.kinds.core_namespace import NamespaceStrategy
from kubesim.kinds.core_pod import PodStrategy
from kubesim.kinds.core_service import ServiceStrategy
from kubesim.kinds.networking_ingress import IngressStrategy
from kubesim.kinds.strategy import Strategy
from kubesim.resources import ResourceType


class Kinds:
    """Registered strategies by resource type and by path (group, version, plural)."""

    def __init__(self, strategies: Iterable[Strategy] = ()) -> None:
        self._strategies: dict[tuple[str, str, str], Strategy] = {}
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_plural: dict[str, ResourceType] = {}
        for strategy in strategies:
            self.register(strategy)

    def register(self, strategy: Strategy) -> None:
        t = strategy.resource
        path = (t.group, t.version, t.plural)
        # The store keys objects by plural: two types may not share one.
        if path in self._by_path or t.plural in self._by_plural:
            raise ValueError(f"{t.plural}.{t.group or 'core'}/{t.version} is already registered")
        self._strategies[path] = strategy
        self._by_path[path] = t
        self._by_plural[t.plural] = t

    def of(self, rtype: ResourceType) -> Strategy:
        return self._strategies[(rtype.group, rtype.version, rtype.plural)]

    @property
    def types(self) -> tuple[ResourceType, ...]:
        return tuple(self._by_path.values())

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_plural(self, plural: str) -> ResourceType:
        return self._by_plural[plural]

    def group_versions(self) -> dict[str, list[str]]:
        """Group name -> versions served (core group is "")."""
        result: dict[str, list[str]] = {}
        for t in self.types:
            versions = result.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
        return result

    def types_in(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self.types if t.group == group and t.version == version]


def builtin_kinds() -> Kinds:
    """The kinds every kubesim serves, in discovery order."""
    return Kinds(
        [
            NamespaceStrategy(),
            PodStrategy(),
            ServiceStrategy(),
            ConfigMapStrategy(),
            SecretStrategy(),
            EventStrategy(),
            NodeStrategy(),
            DeploymentStrategy(),
            ReplicaSetStrategy(),
            IngressStrategy(),
        ]
    )


__all__ = ["Kinds", "Strategy", "builtin_kinds"]
