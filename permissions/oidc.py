"""Single sign-on: OpenID Connect log-in beside the local accounts (mozilla-django-oidc).

The rule, in order:
1. The provider's answer is trusted only as an ID token whose signature verifies against the
   provider's published keys (the library), issued by APOLLO_OIDC_ISSUER, for this client
   (`aud`, and `azp` when several audiences), unexpired and with the nonce of this log-in.
2. A person is (issuer, subject), never a name or an e-mail: the first log-in creates the user
   (named by the APOLLO_OIDC_USERNAME_CLAIM claim, with an unusable password) and links it;
   a name already taken by a user not linked to that subject refuses the log-in, so a
   provider account named like a local admin never becomes that admin.
3. At every log-in the user's Apollo groups become exactly the existing groups named in the
   APOLLO_OIDC_GROUPS_CLAIM claim (a group the claim names that Apollo does not have is
   ignored; none is created), so the grants given to groups apply, and a group removed at the
   provider is removed at the next log-in. Staff and superuser are never taken from claims.
4. A refusal says why on the log-in page; nothing is created or changed.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import Group, User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from history.services import record_event
from permissions.models import ExternalIdentity

logger = logging.getLogger(__name__)


class LoginRefused(SuspiciousOperation):
    """The provider vouched for someone Apollo will not log in; the message says why."""


class ApolloOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        try:
            user: User | None = super().authenticate(request, **kwargs)
        except requests.RequestException as exc:
            # SECURITY: the exception text may hold the token request; only its kind is shown.
            logger.warning("single sign-on: the provider did not answer (%s)", type(exc).__name__)
            _refuse(request, "the identity provider did not answer; try again later.")
            return None
        except LoginRefused as exc:
            _refuse(request, str(exc))
            return None
        return user

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = super().verify_token(token, **kwargs)
        except jwt.InvalidTokenError as exc:
            # The library turns a bad signature into SuspiciousOperation but lets an expired
            # (or not yet valid) token through as PyJWT's error: the callback answered 500.
            raise LoginRefused(f"the ID token is not valid ({type(exc).__name__}).") from None
        # SECURITY: the library checks the signature, expiry and nonce, not who issued the
        # token nor for whom: a token the provider issued to another client must not log in.
        if payload.get("iss") != settings.APOLLO_OIDC_ISSUER:
            raise LoginRefused("the ID token was issued by another provider.")
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise LoginRefused("the ID token was issued for another application.")
        if len(audiences) > 1 and payload.get("azp") != settings.OIDC_RP_CLIENT_ID:
            raise LoginRefused("the ID token was issued for another application.")
        return payload

    def get_or_create_user(self, access_token: str, id_token: str, payload: Any) -> Any:
        try:
            return super().get_or_create_user(access_token, id_token, payload)
        except LoginRefused as exc:
            # The library turns this into "no user" with a log line; the person is told why.
            _refuse(self.request, str(exc))
            raise

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        return payload  # the verified ID token's claims (rule 1)

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise LoginRefused("the ID token names no subject.")
        _username(claims)
        _groups(claims)
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return User.objects.filter(
            external_identity__issuer=settings.APOLLO_OIDC_ISSUER,
            external_identity__subject=claims["sub"],
        )

    def create_user(self, claims: dict[str, Any]) -> User:
        username = _username(claims)
        try:
            with transaction.atomic():
                user = User.objects.create_user(username, email=_email(claims))
                ExternalIdentity.objects.create(
                    user=user, issuer=settings.APOLLO_OIDC_ISSUER, subject=claims["sub"]
                )
                record_event(
                    actor=user,
                    action="user.sso_created",
                    summary=f"{username} created at the first single sign-on log-in",
                    target=user,
                )
                _apply_claims(user, claims)
        except IntegrityError:
            # SECURITY: rule 2: the name belongs to a local user (or another subject).
            raise LoginRefused(
                f"a user named {username!r} already exists in Apollo and is not linked to "
                "this single sign-on account; ask an administrator."
            ) from None
        return user

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        with transaction.atomic():
            _apply_claims(user, claims)
        return user


def _username(claims: dict[str, Any]) -> str:
    value = claims.get(settings.APOLLO_OIDC_USERNAME_CLAIM or "preferred_username")
    if not isinstance(value, str) or not value:
        raise LoginRefused(
            f"the ID token has no {settings.APOLLO_OIDC_USERNAME_CLAIM} claim to name the user."
        )
    try:
        UnicodeUsernameValidator()(value)
    except ValidationError:
        raise LoginRefused(f"{value[:60]!r} is not a valid user name.") from None
    if len(value) > 150:
        raise LoginRefused("the user name is longer than 150 characters.")
    return value


def _groups(claims: dict[str, Any]) -> list[str]:
    value = claims.get(settings.APOLLO_OIDC_GROUPS_CLAIM or "groups", [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise LoginRefused(f"the {settings.APOLLO_OIDC_GROUPS_CLAIM} claim is not a list of names.")
    return sorted(set(value))


def _email(claims: dict[str, Any]) -> str:
    value = claims.get("email")
    return value if isinstance(value, str) and len(value) <= 254 else ""


def _apply_claims(user: User, claims: dict[str, Any]) -> None:
    """Rule 3: the groups (and the e-mail) as the provider says now; history records changes."""
    named = _groups(claims)
    wanted = set(Group.objects.filter(name__in=named))
    current = set(user.groups.all())
    if wanted != current:
        user.groups.set(wanted)
        record_event(
            actor=user,
            action="user.sso_groups",
            summary=f"{user.username}'s groups set from single sign-on",
            target=user,
            data={
                "added": sorted(g.name for g in wanted - current),
                "removed": sorted(g.name for g in current - wanted),
            },
        )
    ExternalIdentity.objects.filter(user=user).update(last_login_groups=named)
    email = _email(claims)
    if email and email != user.email:
        user.email = email
        user.save(update_fields=["email"])


def _refuse(request: HttpRequest | None, reason: str) -> None:
    logger.info("single sign-on refused: %s", reason)
    if request is not None:
        messages.error(request, f"Single sign-on did not log you in: {reason}")


def provider_logout_url(request: HttpRequest) -> str:
    """Where the log-out goes (OIDC_OP_LOGOUT_URL_METHOD): the provider's end-session page for
    a session that came from it, so that the provider's session ends too; else the log-in."""
    login = request.build_absolute_uri(reverse("login"))
    id_token = request.session.get("oidc_id_token")
    endpoint = getattr(settings, "APOLLO_OIDC_END_SESSION_ENDPOINT", "")
    if not id_token or not endpoint:
        return reverse("login")
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": login,
            "client_id": settings.OIDC_RP_CLIENT_ID,
        }
    )
    return f"{endpoint}?{query}"
