"""Drift of a Deployment's pod template: what Apollo applied against what runs, each difference
named ("env LOG_LEVEL changed (container web)", "annotation team added").

The rule:
1. Apollo's side is the pod template of the Deployment document it last applied (the last
   DONE deployment's `manifest_documents`); the cluster's side is the running Deployment.
2. What the API server defaults (a probe's timeoutSeconds, a port's protocol, a fieldRef's
   apiVersion, requests taken from limits) is not drift: a field Apollo applied counts when
   the running value differs from it, and a field only the cluster has counts only where
   nothing defaults it (env vars, template labels and annotations).
3. What Kubernetes or Apollo itself writes is not drift: the `pod-template-hash` label (the
   Deployment controller's) and `kubectl.kubernetes.io/restartedAt` (a rolling restart,
   Apollo's own included).
4. Quantities compare by value ("0.5" and "500m" are one CPU half).
5. SECURITY: env values are never named (they may hold credentials), only the variable.

Images and replicas are judged in environments.live.state; this module reads the rest.
Pure: dicts in, sentences out.
"""

from typing import Any

from kubernetes.utils import parse_quantity

from environments.kube.apply import RESTARTED_AT

Obj = dict[str, Any]

IGNORED_LABELS = frozenset({"pod-template-hash"})
IGNORED_ANNOTATIONS = frozenset({RESTARTED_AT})
# Container fields judged on their own (image in state.drift_of; env and resources here).
OWN_RULES = frozenset({"name", "image", "env", "resources"})


def pod_template(deployment: Obj) -> Obj:
    return dict(((deployment.get("spec") or {}).get("template")) or {})


def template_drift(running: Obj, applied: Obj) -> list[str]:
    """The named differences between two pod templates (running, applied)."""
    run_meta, app_meta = running.get("metadata") or {}, applied.get("metadata") or {}
    differences = _keyed(
        "label", run_meta.get("labels") or {}, app_meta.get("labels") or {}, IGNORED_LABELS
    )
    differences += _keyed(
        "annotation",
        run_meta.get("annotations") or {},
        app_meta.get("annotations") or {},
        IGNORED_ANNOTATIONS,
    )
    run_spec, app_spec = running.get("spec") or {}, applied.get("spec") or {}
    for key in sorted(app_spec.keys() - {"containers", "initContainers"}):
        if not _covers(app_spec[key], run_spec.get(key)):
            differences.append(f"pod spec {key} changed")
    for field in ("initContainers", "containers"):
        running_containers = _by_name(run_spec.get(field))
        for name, container in sorted(_by_name(app_spec.get(field)).items()):
            if name in running_containers:
                differences += _container_drift(name, running_containers[name], container)
    return differences


def _keyed(what: str, running: Obj, applied: Obj, ignored: frozenset[str]) -> list[str]:
    differences = []
    for key in sorted((running.keys() | applied.keys()) - ignored):
        if key not in applied:
            differences.append(f"{what} {key} added")
        elif key not in running:
            differences.append(f"{what} {key} removed")
        elif str(running[key]) != str(applied[key]):
            differences.append(f"{what} {key} changed")
    return differences


def _container_drift(name: str, running: Obj, applied: Obj) -> list[str]:
    where = f"(container {name})"
    differences = [
        f"{text} {where}"
        for text in _keyed("env", _env(running.get("env")), _env(applied.get("env")), frozenset())
    ]
    differences += _resources_drift(where, running.get("resources"), applied.get("resources"))
    for key in sorted(applied.keys() - OWN_RULES):
        if not _covers(applied[key], running.get(key)):
            differences.append(f"{key} changed {where}")
    for key in ("command", "args"):
        if key not in applied and running.get(key):
            differences.append(f"{key} added {where}")
    return differences


def _env(entries: Any) -> dict[str, str]:
    """Name -> a comparable text of the value (a valueFrom is compared by its own fields
    minus the apiVersion the API server defaults)."""
    env = {}
    for entry in entries or []:
        if not isinstance(entry, dict) or "name" not in entry:
            continue
        source = entry.get("valueFrom")
        if isinstance(source, dict):
            env[str(entry["name"])] = repr(_without_defaults(source))
        else:
            env[str(entry["name"])] = str(entry.get("value", ""))
    return env


def _without_defaults(source: Obj) -> Obj:
    cleaned = {}
    for key, value in source.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("apiVersion", "optional")}
        cleaned[key] = value
    return dict(sorted(cleaned.items()))


def _quantities(resources: Any) -> dict[str, Any]:
    """`section.resource` -> value, requests defaulted from limits as the API server does."""
    resources = resources if isinstance(resources, dict) else {}
    limits = dict(resources.get("limits") or {})
    requests = {**limits, **(resources.get("requests") or {})}
    flat = {f"limits.{k}": v for k, v in limits.items()}
    flat.update({f"requests.{k}": v for k, v in requests.items()})
    return flat


def _resources_drift(where: str, running: Any, applied: Any) -> list[str]:
    now, wanted = _quantities(running), _quantities(applied)
    differences = []
    for key in sorted(now.keys() | wanted.keys()):
        if key not in wanted:
            differences.append(f"resources {key} {now[key]} added {where}")
        elif key not in now:
            differences.append(f"resources {key} removed {where}")
        elif not _same_quantity(now[key], wanted[key]):
            differences.append(
                f"resources {key}: {now[key]} runs, Apollo applied {wanted[key]} {where}"
            )
    return differences


def _same_quantity(a: Any, b: Any) -> bool:
    try:
        return bool(parse_quantity(a) == parse_quantity(b))
    except ValueError:
        return str(a) == str(b)


def _covers(applied: Any, running: Any) -> bool:
    """Whether the running value holds everything applied (fields the API server adds
    beside them are defaults, not drift); lists match item by item."""
    if isinstance(applied, dict):
        return isinstance(running, dict) and all(
            _covers(value, running.get(key)) for key, value in applied.items()
        )
    if isinstance(applied, list):
        return (
            isinstance(running, list)
            and len(applied) == len(running)
            and all(_covers(a, r) for a, r in zip(applied, running, strict=True))
        )
    if applied is None:
        return True
    return bool(applied == running) or str(applied) == str(running)


def _by_name(containers: Any) -> dict[str, Obj]:
    return {str(c.get("name", "")): c for c in containers or [] if isinstance(c, dict)}
