"""Live updates of a deployment: the payload and its channel-layer group."""

from collections.abc import Sequence
from typing import Any, TypedDict

from django.template.loader import render_to_string

from apollo_site.ops.publish import publish_many
from deployments.models import Deployment


class StatusPayload(TypedDict):
    type: str
    id: int
    status: str
    status_reason: str
    badge_html: str


LOG_SOURCE = "logs"  # timeline entries with a failing container's last log lines
HIDDEN_LOGS = "log lines hidden: reading them needs the view_logs permission"


def visible_entry(entry: dict[str, Any], *, may_view_logs: bool) -> dict[str, Any]:
    """SECURITY: log lines are for who may view logs; every signed-in user sees the rest."""
    if entry.get("source") == LOG_SOURCE and not may_view_logs:
        return {**entry, "message": HIDDEN_LOGS}
    return entry


def visible_timeline(timeline: list[dict[str, Any]], *, may_view_logs: bool) -> list[Any]:
    return [visible_entry(entry, may_view_logs=may_view_logs) for entry in timeline]


def timeline_message(entry: dict[str, Any]) -> dict[str, Any]:
    """One timeline entry for the page's socket, with its markup rendered from the partial the
    page itself includes (the browser appends it; it builds no markup of its own)."""
    html = render_to_string("deployments/_timeline.html", {"timeline": [entry]})
    return {**entry, "type": "deployment.timeline", "html": html}


def batch_message(state: dict[str, Any]) -> dict[str, Any]:
    """The batch page's state with its markup (each row's badge, the summary) rendered from the
    partials the page includes, for its socket and its polling fallback alike."""
    rows = [
        {**row, "badge_html": render_to_string("deployments/_status_badge.html", row)}
        for row in state["rows"]
    ]
    summary_html = render_to_string(
        "deployments/_batch_summary.html", {"summary": state["summary"]}
    )
    return {**state, "rows": rows, "summary_html": summary_html}


def has_logs(timeline: list[dict[str, Any]]) -> bool:
    return any(entry.get("source") == LOG_SOURCE for entry in timeline)


def group_name(deployment_id: int) -> str:
    return f"deployment.{deployment_id}"


def status_payload(deployment: Deployment) -> StatusPayload:
    return {
        "type": "deployment.status",
        "id": deployment.pk,
        "status": deployment.status,
        "status_reason": deployment.status_reason,
        "badge_html": render_to_string(
            "deployments/_status_badge.html", {"status": deployment.status}
        ),
    }


def broadcast_status(deployment: Deployment, *, then: Sequence[dict[str, Any]] = ()) -> None:
    """Send the deployment's status, then the timeline entries `then`, to every open page, in
    one round through the channel layer. Call after commit, never inside. Best effort
    (apollo_site.publish): a channel layer that is down never fails the caller."""
    messages = [{"type": "deployment.status", "payload": status_payload(deployment)}]
    publish_many(group_name(deployment.pk), [*messages, *_timeline_messages(then)])


def broadcast_timeline(deployment: Deployment, entry: dict[str, Any]) -> None:
    """Send one new timeline entry to every open page of the deployment (best effort)."""
    broadcast(deployment, [entry])


def broadcast(
    deployment: Deployment, entries: list[dict[str, Any]], *, status: bool = False
) -> None:
    """Send new timeline entries, then (status=True) the deployment's status, to every open
    page of the deployment in one round through the channel layer (best effort, in order)."""
    messages = _timeline_messages(entries)
    if status:
        messages.append({"type": "deployment.status", "payload": status_payload(deployment)})
    publish_many(group_name(deployment.pk), messages)


def _timeline_messages(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": "deployment.status", "payload": {"type": "deployment.timeline", **entry}}
        for entry in entries
    ]
