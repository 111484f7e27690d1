"""Deployments and ReplicaSets (apps/v1): defaults, a selector that matches the template and may
never change, the rollout strategy (Deployment), the scale subresource and kubectl's columns."""

from __future__ import annotations

from kubesim import resources as R
from kubesim.kinds.core_pod import default_pod_spec, validate_containers
from kubesim.kinds.strategy import INTEGER, JSON, STRING, Cause, Row, Strategy, age
from kubesim.label_selectors import from_label_selector, labels_match, selector_string


def _template_defaults(spec: JSON) -> None:
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    default_pod_spec(template.setdefault("spec", {}))


def _containers(spec: JSON) -> tuple[str, str]:
    containers = spec.get("template", {}).get("spec", {}).get("containers") or []
    return (
        ",".join(str(c.get("name")) for c in containers),
        ",".join(str(c.get("image")) for c in containers),
    )


class WorkloadStrategy(Strategy):
    """What Deployments and ReplicaSets share: replicas, a selector over a pod template."""

    def validate(self, obj: JSON) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            causes.append(
                (
                    "spec.replicas",
                    "FieldValueInvalid",
                    f"Invalid value: {replicas}: must be greater than or equal to 0",
                )
            )
        selector = spec.get("selector")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector:
            causes.append(("spec.selector", "FieldValueRequired", "Required value"))
        elif not labels_match(from_label_selector(selector), labels) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    "FieldValueInvalid",
                    f"Invalid value: {labels!r}: `selector` does not match template `labels`",
                )
            )
        return causes + validate_containers(
            (spec.get("template") or {}).get("spec") or {}, "spec.template.spec"
        )

    def validate_update(self, old: JSON, new: JSON) -> list[Cause]:
        selector = new.get("spec", {}).get("selector")
        if old.get("spec", {}).get("selector") == selector:
            return []
        return [
            (
                "spec.selector",
                "FieldValueInvalid",
                f"Invalid value: {selector!r}: field is immutable",
            )
        ]


def _validate_rollout(strategy: JSON) -> list[Cause]:
    if strategy.get("type") == "Recreate" and strategy.get("rollingUpdate"):
        return [
            (
                "spec.strategy.rollingUpdate",
                "FieldValueForbidden",
                "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            )
        ]
    if strategy.get("type") not in ("Recreate", "RollingUpdate"):
        return [
            (
                "spec.strategy.type",
                "FieldValueNotSupported",
                f'Unsupported value: "{strategy.get("type")}": supported values: '
                '"Recreate", "RollingUpdate"',
            )
        ]
    rolling = strategy.get("rollingUpdate") or {}
    if str(rolling.get("maxSurge")) in ("0", "0%") and str(rolling.get("maxUnavailable")) in (
        "0",
        "0%",
    ):
        return [
            (
                "spec.strategy.rollingUpdate.maxUnavailable",
                "FieldValueInvalid",
                "Invalid value: 0: may not be 0 when `maxSurge` is 0",
            )
        ]
    return []


class DeploymentStrategy(WorkloadStrategy):
    resource = R.DEPLOYMENTS
    columns = (
        ("Name", STRING, 0),
        ("Ready", STRING, 0),
        ("Up-to-date", INTEGER, 0),
        ("Available", INTEGER, 0),
        ("Age", STRING, 0),
        ("Containers", STRING, 1),
        ("Images", STRING, 1),
        ("Selector", STRING, 1),
    )

    def default(self, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        _template_defaults(spec)

    def validate(self, obj: JSON) -> list[Cause]:
        strategy = (obj.get("spec") or {}).get("strategy") or {}
        return super().validate(obj) + _validate_rollout(strategy)

    def row(self, obj: JSON, now: float) -> Row:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        names, images = _containers(spec)
        return [
            obj["metadata"]["name"],
            f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0),
            age(obj, now),
            names,
            images,
            selector_string(spec.get("selector")),
        ]


class ReplicaSetStrategy(WorkloadStrategy):
    resource = R.REPLICASETS
    columns = (
        ("Name", STRING, 0),
        ("Desired", INTEGER, 0),
        ("Current", INTEGER, 0),
        ("Ready", INTEGER, 0),
        ("Age", STRING, 0),
        ("Containers", STRING, 1),
        ("Images", STRING, 1),
        ("Selector", STRING, 1),
    )

    def default(self, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        _template_defaults(spec)

    def row(self, obj: JSON, now: float) -> Row:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        names, images = _containers(spec)
        return [
            obj["metadata"]["name"],
            spec.get("replicas", 1),
            status.get("replicas", 0),
            status.get("readyReplicas", 0),
            age(obj, now),
            names,
            images,
            selector_string(spec.get("selector")),
        ]
