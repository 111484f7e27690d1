"""Writing history. Called by the service that makes a change, inside its transaction.

An event records who did what to which object, and which service and environment it is about
(derived from the target, or given): the History page shows it to who may `view` there
(permissions.rules, rule 6). A change records a diff: ``changes`` lists each field as before →
after, and ``diffs`` holds a unified diff of each long text (manifest templates).

SECURITY: callers pass descriptions, never secrets. ``describe`` leaves out the fields named
secret and records only whether they changed ("token changed"), never their value.
"""

import difflib
import json
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models

from history.models import AuditEvent

CHANGED = "(changed)"  # what a secret field's before/after reads as, never the value


def _scope(target: models.Model | None) -> tuple[int | None, int | None]:
    """(service_id, environment_id) an event about this target concerns, from its fields."""
    if target is None:
        return None, None
    label = target._meta.label_lower
    if label == "deployments.service":
        return target.pk, None
    if label == "environments.environment":
        return None, target.pk
    return getattr(target, "service_id", None), getattr(target, "environment_id", None)


def record_event(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    summary: str,
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
    service: models.Model | None = None,
    environment: models.Model | None = None,
) -> AuditEvent:
    user = actor if isinstance(actor, User) else None
    service_id, environment_id = _scope(target)
    return AuditEvent.objects.create(
        actor=user,
        actor_name=user.get_username() if user is not None else "system",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        service_id=service.pk if service is not None else service_id,
        environment_id=environment.pk if environment is not None else environment_id,
        summary=summary[:500],
        data=data or {},
    )


def _plain(value: Any) -> Any:
    """A JSON-safe value for history (model instances by their name, the rest as text)."""
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


AUTOMATIC = {"created_at", "updated_at"}


def describe(instance: models.Model, *, secret: dict[str, str] | None = None) -> dict[str, Any]:
    """The editable fields of an instance as plain values (a foreign key by its name).

    ``secret`` maps a label to a field that must never be recorded (a cluster's token): it is
    described only as set or not, and ``changes`` shows it as "(changed)"."""
    described = {
        field.name: _plain(getattr(instance, field.name))
        for field in instance._meta.concrete_fields
        if field.editable and not field.primary_key and field.name not in AUTOMATIC
    }
    for label, attribute in (secret or {}).items():
        # SECURITY: the value never enters history; whether it is set is enough.
        described.pop(attribute, None)
        described[label] = {"secret": True, "set": bool(getattr(instance, attribute))}
    return described


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get("secret") is True


def changes(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    text_fields: Iterable[str] = (),
    secret_changed: Iterable[str] = (),
) -> dict[str, Any]:
    """What history stores about a change: ``changes`` (field, before, after) for every field
    that differs, and ``diffs`` (field: unified diff) for the long text fields."""
    before, after = before or {}, after or {}
    texts = set(text_fields)
    rows: list[dict[str, Any]] = []
    diffs: dict[str, str] = {}
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if _is_secret(old) or _is_secret(new) or name in secret_changed:
            if name in secret_changed or old != new:
                rows.append({"field": name, "before": "", "after": CHANGED, "secret": True})
            continue
        if old == new:
            continue
        if name in texts:
            diffs[name] = text_diff(str(old or ""), str(new or ""), name)
            rows.append({"field": name, "before": "", "after": "", "diff": True})
        else:
            rows.append({"field": name, "before": _text(old), "after": _text(new)})
    return {"changes": rows, "diffs": diffs}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def text_diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{name} (before)",
        tofile=f"{name} (after)",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def record_change(
    *,
    actor: User | AnonymousUser | None,
    kind: str,
    target: models.Model,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    text_fields: Iterable[str] = (),
    secret_changed: Iterable[str] = (),
    name: str = "",
) -> AuditEvent | None:
    """Record the creation (before None), change or deletion (after None) of an object as
    ``<kind>.created/changed/deleted`` with its diff; a change that changes nothing is not
    recorded (None)."""
    diff = changes(before, after, text_fields=text_fields, secret_changed=secret_changed)
    label = name or str(target)
    if before is None:
        action, summary = "created", f"Created {kind} {label}"
    elif after is None:
        action, summary = "deleted", f"Deleted {kind} {label}"
    else:
        if not diff["changes"]:
            return None
        fields = ", ".join(row["field"] for row in diff["changes"])
        action, summary = "changed", f"Changed {fields} of {kind} {label}"
    return record_event(
        actor=actor, action=f"{kind}.{action}", summary=summary, target=target, data=diff
    )
