"""What the site's header offers this user: the Deploy link only to who may deploy somewhere,
and the header's links.

Asked lazily (a page that renders no header, such as a fragment, asks nothing) and once per
render."""

from functools import lru_cache
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.urls import URLResolver, get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils.functional import SimpleLazyObject

from permissions.selectors import may_somewhere
from permissions.verbs import Verb

# The signed-in header's links: template name -> URL name. (The brand link keeps its {% url %}:
# it shows on pages rendered without the request's context processors, such as the 500 page.)
HEADER_LINKS = {
    "deploy": "deploy",
    "environments": "environment-list",
    "status": "status-board",
    "history": "history",
    "metrics": "delivery-metrics",
    "admin": "admin:index",
    "logout": "logout",
}


@lru_cache(maxsize=16)
def _header_urls(resolver: URLResolver, prefix: str) -> dict[str, str]:
    """reverse() of each header link, once per URL configuration and script prefix (the
    resolver is Django's own, cached and replaced when ROOT_URLCONF changes): the {% url %}
    tags took ~0.1 ms CPU on every page (2026-11). Callers must not mutate the result."""
    urlconf: Any = resolver.urlconf_name  # a module path or module, as reverse() takes it
    return {key: reverse(name, urlconf=urlconf) for key, name in HEADER_LINKS.items()}


def _may_deploy(user: User | AnonymousUser | None) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    # Whether some (service, environment) allows it, without spelling out every allowed pair
    # (28 % of a developer's status board at 1,000 services x 20 environments).
    return may_somewhere(user, Verb.DEPLOY)


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    return {
        "may_deploy_somewhere": SimpleLazyObject(lambda: _may_deploy(user)),
        "header_urls": _header_urls(get_resolver(get_urlconf()), get_script_prefix()),
    }
