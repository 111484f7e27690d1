"""The bodies sent: a Slack Block Kit message, or the JSON event itself (signed)."""

import json
from typing import Any

from deployments.notifications.models import Subscription

_VERBS = {
    "requested": "requested",
    "started": "started",
    "done": "is DONE",
    "failed": "FAILED",
    "canceled": "was CANCELED",
    "reverted": "is being reverted",
    "blocked": "was refused by a blocker",
    "overridden": "was deployed past a blocker",
    "marked_bad": "was marked bad",
}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(payload: dict[str, Any]) -> dict[str, Any]:
    event = str(payload.get("event", ""))
    verb = _VERBS.get(event, event)
    d = payload.get("deployment")
    if d is None and "mark" in payload:
        m = payload["mark"]
        headline = (
            f"{m.get('service')}@{str(m.get('sha', ''))[:12]} in {m.get('environment')} {verb}"
        )
        fields = [("By", m.get("marked_by")), ("Why", m.get("reason"))]
        link = m.get("url", "")
    elif d is None:
        r = payload.get("request") or {}
        headline = (
            f"{r.get('service')}@{str(r.get('git_commit_sha', ''))[:12]} to "
            f"{r.get('environment')} {verb}"
        )
        fields = [("Requested by", r.get("requested_by")), ("Reason", r.get("reason"))]
        link = ""
    else:
        target = d["service"] + (f"/{d['group']}" if d.get("group") else "")
        headline = f"#{d['id']} {target}@{d['git_commit_sha'][:12]} to {d['environment']} {verb}"
        fields = [
            ("Who", d.get("deployed_by")),
            ("Status", d.get("status")),
            ("Sha", d.get("git_commit_sha")),
            ("Why", d.get("message") or payload.get("note")),
        ]
        link = d.get("url", "")
    text = _slack_escape(headline)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(str(value))}"}
                for name, value in fields
                if value
            ][:10],
        },
    ]
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": link}
                ],
            }
        )
    if not blocks[1]["fields"]:
        blocks.pop(1)
    return {"text": text, "blocks": blocks}


def body(subscription: Subscription, payload: dict[str, Any]) -> bytes:
    document = slack(payload) if subscription.kind == Subscription.Kind.SLACK else payload
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
