"""Small helpers shared by the kubesim tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def deployment(
    name: str,
    image: str = "registry.example/web:1.0",
    *,
    replicas: int = 2,
    strategy: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    progress_deadline: int | None = None,
    env: list[dict[str, str]] | None = None,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = labels or {"app": name}
    container: dict[str, Any] = {"name": "app", "image": image}
    if env:
        container["env"] = env
    if ports:
        container["ports"] = ports
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
    }
    if strategy:
        spec["strategy"] = strategy
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def pod(name: str, image: str = "registry.example/web:1.0", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **meta},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
