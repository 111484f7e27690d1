"""API tokens: issued once, stored hashed, checked in constant time.

A key looks like `apollo_<prefix>_<secret>`; the prefix (public) finds the row, the digest
of the whole key (compared with hmac.compare_digest) proves it.
"""

import hashlib
import hmac
import math
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from history.services import record_event
from permissions.models import ApiToken
from permissions.throttling import BadTokenThrottle

KEY_PREFIX = "apollo"
# last_used_at is informative; writing it on every request would make each API call a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(*, actor: User | None, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for user; returns the row and the key, which is never available again."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name, prefix=prefix, digest=_digest(key))
        record_event(
            actor=actor,
            action="token.issued",
            target=token,
            summary=f"issued API token '{name}' ({prefix}…) for {user.username}",
        )
    return token, key


def revoke_token(*, actor: User | None, token: ApiToken, reason: str = "") -> None:
    why = f" because {reason}" if reason else ""
    with transaction.atomic():
        record_event(
            actor=actor,
            action="token.revoked",
            target=token,
            summary=f"revoked API token '{token.name}' ({token.prefix}…) of {token.user}{why}",
        )
        token.delete()


def user_for_key(key: str) -> User | None:
    parts = key.split("_", 2)  # the secret part may itself contain "_"
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    digest = _digest(key)
    # Unordered: the digest is unique, so at most one token matches whatever the order, and
    # the model's ordering (a join on the user's name and a sort) cost every request.
    for token in ApiToken.objects.select_related("user").filter(prefix=parts[1]).order_by():
        if hmac.compare_digest(token.digest, digest):
            _touch(token)
            return token.user
    return None


def _touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """DRF authentication for `Authorization: Token <key>` against hashed ApiTokens."""

    def authenticate(self, request: Request) -> tuple[User, str] | None:
        # SECURITY: an address that has presented too many unknown tokens is refused before
        # its token is looked up, so that guessing cannot tell a right key from a wrong one.
        throttle = BadTokenThrottle()
        wait = throttle.refusal_wait(request)
        if wait is not None:
            raise exceptions.Throttled(
                wait=math.ceil(wait),
                detail="Request was throttled: too many invalid API tokens from this address.",
            )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise

    def authenticate_credentials(self, key: str) -> tuple[User, str]:
        user = user_for_key(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, key
