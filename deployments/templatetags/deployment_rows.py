"""Cheap per-row tags for the long tables (home page, history).

`{% include %}` and `{% url %}` in a loop cost a template render and a URL reversal per row;
these tags do that work once per page render and reuse it. The markup still comes from the
same partials and the URLs from the same URL patterns.
"""

from typing import Any
from urllib.parse import quote

from django import template
from django.template.context import Context
from django.template.loader import get_template
from django.urls import reverse

register = template.Library()

BADGE_TEMPLATE = "deployments/_status_badge.html"
# Stands in for the argument when reversing once; digits pass both the int and str converters.
SENTINEL = "9081726354"
# What reverse() leaves unquoted in a path argument (django.urls.resolvers).
URL_SAFE = "!$&'()*+,;=/~:@"


def _page_cache(context: Context, key: str) -> dict[Any, Any]:
    # render_context lives for one render of the template, so nothing outlives the request
    # (a template edited during development, a different script prefix per request).
    render_context: Any = context.render_context
    cache: dict[Any, Any] = render_context.setdefault(key, {})
    return cache


@register.simple_tag(takes_context=True)
def status_badge(context: Context, status: str) -> str:
    """The deployments/_status_badge.html partial, rendered once per status that a page shows."""
    badges: dict[str, str] = _page_cache(context, "deployment_rows.badges")
    if status not in badges:
        # A rendered template is a SafeString: simple_tag does not escape it again.
        badges[status] = get_template(BADGE_TEMPLATE).render({"status": status})
    return badges[status]


@register.simple_tag(takes_context=True)
def row_url(context: Context, name: str, arg: object) -> str:
    """`{% url name arg %}` for a URL with one argument, reversing the pattern once per page."""
    patterns: dict[str, tuple[str, str] | None] = _page_cache(context, "deployment_rows.urls")
    if name not in patterns:
        head, found, tail = reverse(name, args=[SENTINEL]).partition(SENTINEL)
        # None: the sentinel also shows up elsewhere in the URL, so reverse every time.
        patterns[name] = (head, tail) if found and SENTINEL not in tail else None
    pattern, text = patterns[name], str(arg)
    # An empty or slashed argument matches no converter: let reverse() raise as {% url %} does.
    if pattern is None or not text or "/" in text:
        return reverse(name, args=[arg])
    # simple_tag escapes the result when autoescape is on, as {% url %} does.
    return pattern[0] + quote(text, safe=URL_SAFE) + pattern[1]
