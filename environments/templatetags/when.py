"""Times as people read them: `{{ value|when }}` gives "2026-11-29 23:31 UTC" for a datetime or
an ISO 8601 string (the live state carries strings), "" for nothing or something unparsable."""

from datetime import UTC, datetime

from django import template
from django.utils import timezone

register = template.Library()


def _parse(value: object) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return timezone.localtime(moment)


@register.filter
def when(value: object) -> str:
    moment = _parse(value)
    return moment.strftime("%Y-%m-%d %H:%M %Z") if moment is not None else ""


@register.filter
def iso(value: object) -> str:
    """The machine-readable form for <time datetime=...>."""
    moment = _parse(value)
    return moment.isoformat() if moment is not None else ""
