"""What the site's header offers this user: the Deploy link only to who may deploy somewhere.

Asked lazily (a page that renders no header, such as a fragment, asks nothing) and once per
render."""

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from permissions.selectors import may_somewhere
from permissions.verbs import Verb


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
    return {"may_deploy_somewhere": SimpleLazyObject(lambda: _may_deploy(user))}
