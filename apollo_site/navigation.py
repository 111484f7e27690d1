"""What the site's header offers this user: the Deploy link only to who may deploy somewhere.

Asked lazily (a page that renders no header, such as a fragment, asks nothing) and once per
render."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from permissions.selectors import allowed_targets
from permissions.verbs import Verb


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)

    def may_deploy() -> bool:
        if user is None or not user.is_authenticated:
            return False
        return bool(user.is_superuser or allowed_targets(user, Verb.DEPLOY))

    return {"may_deploy_somewhere": SimpleLazyObject(may_deploy)}
