"""Sessions that know their user: a signed-in request reads its session and its user in one
statement.

Django's database sessions keep the user's id inside the signed session data, so a signed-in
page read the session row, then the user row: two round trips before the view ran. On
PostgreSQL each round trip is a wake-up of another process, which on a busy machine cost more
than the statement itself (#16). This store keeps the user's id in a column of its own as
well (Django documents extending AbstractBaseSession this way) and reads the session with its
user joined; `get_user` then answers request.user from that row.

SECURITY: every guarantee of Django's stays, because the row is still the database's:
  - the session hash is checked as django.contrib.auth.get_user checks it (a password change
    logs the other sessions out; a rotated SECRET_KEY is accepted from SECRET_KEY_FALLBACKS and
    the session key cycled), `get_user` mirrors Django's code (pinned by
    tests/permissions/test_sessions_user_join.py);
  - expiry is the same condition (expire_date > now) in the same statement;
  - logout deletes the row, and nothing is cached outside the database, so a logout or a
    password change holds in every process from its next request;
  - the user is read as the backend that logged it in would read it (ModelBackend refuses an
    inactive user); a backend we do not know is asked itself, with its own read.
"""

from typing import Any, ClassVar, cast

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, load_backend
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.contrib.sessions.base_session import AbstractBaseSession, BaseSessionManager
from django.db import models
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from mozilla_django_oidc.auth import OIDCAuthenticationBackend


class UserSessionManager(BaseSessionManager["UserSession"]):
    def get_queryset(self) -> models.QuerySet["UserSession"]:
        # Django's store reads a session with objects.get(session_key=..., expire_date__gt=now):
        # the user comes in the same statement (a LEFT JOIN: a session without a user stays).
        return super().get_queryset().select_related("user")


class UserSession(AbstractBaseSession):
    # No database constraint: a session saved while its user is being deleted must not fail
    # the request (Django's own table has no user column at all). Deleting a user through the
    # ORM still deletes their sessions (on_delete), and a session whose user is gone reads as
    # anonymous (the join finds nothing, and the backend's own read finds nothing either).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
    )

    objects: ClassVar[UserSessionManager] = UserSessionManager()

    class Meta:
        db_table = "permissions_user_session"
        verbose_name = "session"
        verbose_name_plural = "sessions"

    @classmethod
    def get_session_store_class(cls) -> type["SessionStore"]:
        return SessionStore


# What a backend's get_user(user_id) does with the user it reads, for the backends whose
# get_user we know: ModelBackend's refuses who may not authenticate (inactive users),
# mozilla-django-oidc's returns the user as read. Any other backend is asked itself.
_ModelBackendGetUser = ModelBackend.get_user
_OIDCGetUser = OIDCAuthenticationBackend.get_user


# What a session key Django made is written with, and how long it may be.
_KEY_CHARACTERS = frozenset(VALID_KEY_CHARS)
SESSION_KEY_LENGTH = AbstractBaseSession._meta.get_field("session_key").max_length or 40


class SessionStore(DBStore):
    """settings.SESSION_ENGINE: Django's database store on UserSession."""

    joined_user: AbstractBaseUser | None = None

    @classmethod
    def get_model_class(cls) -> type[UserSession]:
        return UserSession

    def _validate_session_key(self, key: str | None) -> bool:
        """Django's check (8 characters at least), and the key made as Django makes its keys:
        its alphabet, within the column's length. A cookie of anything else names no session
        and is not looked up: with a NUL in it, PostgreSQL refused the read and the page
        failed with a 500."""
        return bool(
            super()._validate_session_key(key)  # type: ignore[misc]
            and key is not None
            and len(key) <= SESSION_KEY_LENGTH
            and set(key) <= _KEY_CHARACTERS
        )

    def load(self) -> dict[str, Any]:
        row = self._get_session_from_db()  # type: ignore[attr-defined]  # Django's, unchanged
        self.joined_user = row.user if row else None
        return self.decode(row.session_data) if row else {}

    def create_model_instance(self, data: dict[str, Any]) -> UserSession:
        row = cast(UserSession, super().create_model_instance(data))
        row.user_id = _user_id(data.get(auth.SESSION_KEY))
        return row


def _user_id(value: object) -> Any:
    if value is None:
        return None
    try:
        return auth.get_user_model()._meta.pk.to_python(value)
    except Exception:  # a value no user could have: no user column
        return None


_ASK_THE_BACKEND = object()


def _read_as_backend(backend: Any, joined: AbstractBaseUser | None, user_id: Any) -> Any:
    """What backend.get_user(user_id) would answer, from the joined row; _ASK_THE_BACKEND when
    the row cannot say (no joined user, another user, or a backend whose get_user we do not
    know)."""
    if joined is None or str(joined.pk) != str(user_id):
        return _ASK_THE_BACKEND
    get_user = getattr(type(backend), "get_user", None)
    if get_user is _ModelBackendGetUser:
        return joined if backend.user_can_authenticate(joined) else None
    if get_user is _OIDCGetUser:
        return joined
    return _ASK_THE_BACKEND


def get_user(request: HttpRequest) -> Any:
    """django.contrib.auth.get_user, with the user read by the session's own statement.

    SECURITY: the body after the backend's read is Django 5.2's, line for line (the session
    hash, its fallbacks, the flush); a test pins Django's source so that an upgrade that
    changes it fails until this is compared again."""
    session = request.session
    if not isinstance(session, SessionStore):
        return auth.get_user(request)
    user: Any = None
    try:
        # Loads the session, and its user with it.
        user_id = auth._get_user_session_key(request)  # type: ignore[attr-defined]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        pass
    else:
        if backend_path in settings.AUTHENTICATION_BACKENDS:
            backend = load_backend(backend_path)
            user = _read_as_backend(backend, session.joined_user, user_id)
            if user is _ASK_THE_BACKEND:
                user = backend.get_user(user_id)
            # Verify the session
            if hasattr(user, "get_session_auth_hash"):
                session_hash = session.get(HASH_SESSION_KEY)
                if not session_hash:
                    session_hash_verified = False
                else:
                    session_auth_hash = user.get_session_auth_hash()
                    session_hash_verified = constant_time_compare(session_hash, session_auth_hash)
                if not session_hash_verified:
                    # If the current secret does not verify the session, try with the
                    # fallback secrets and stop when a matching one is found.
                    if session_hash and any(
                        constant_time_compare(session_hash, fallback_auth_hash)
                        for fallback_auth_hash in user.get_session_auth_fallback_hash()
                    ):
                        session.cycle_key()
                        session[HASH_SESSION_KEY] = session_auth_hash
                    else:
                        session.flush()
                        user = None
    return user or AnonymousUser()
