"""What the site's header offers this user: the Deploy link only to who may deploy somewhere.

Asked lazily (a page that renders no header, such as a fragment, asks nothing) and once per
render."""

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from permissions.selectors import allowed_targets, holdings
from permissions.verbs import Effect, Verb


def _may_deploy(user: User | AnonymousUser | None) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    assert isinstance(user, User)
    # Most readers hold no deploy grant at all: one query of their holdings answers them, without
    # loading every service and environment to spell out the allowed pairs (~2 ms on every page
    # at 500 services). A verb is allowed only where an ALLOW holding applies (permissions.rules).
    if not any(h.effect == Effect.ALLOW for h in holdings(verb=Verb.DEPLOY, user=user)):
        return False
    return bool(allowed_targets(user, Verb.DEPLOY))


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    return {"may_deploy_somewhere": SimpleLazyObject(lambda: _may_deploy(user))}
