"""`{% worker_banner %}`: the short banner that says no deployment worker is alive.

One query (the newest worker heartbeat); nothing is shown while a worker beats.
"""

from typing import Any

from django import template

from deployments.engine.heartbeat import worker_absence

register = template.Library()


@register.inclusion_tag("deployments/_worker_banner.html")
def worker_banner(show: bool = True) -> dict[str, Any]:
    return {"absence": worker_absence() if show else ""}
