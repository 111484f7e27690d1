"""Sessions that know their user: a signed-in request reads its session and its user in one
statement.

Django's database sessions keep the user's id inside the signed session data, so a signed-in
page read the session row, then the user row: two round trips before the view ran. On
PostgreSQL each round trip is a wake-up of another process, which on a busy machine cost more
than the statement itself (#16). This store keeps the user's id in a column of its own as
well (Django documents extending AbstractBaseSession this way) and reads the session with its
user joined; `get_user` then answers request.user from that row. The statement is compiled
once per database (_SessionRead), not on every request.

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

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
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
from django.db import connections, models, router
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from apollo_site.prepared_sql import prepared_cursor


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
        # Django's _get_session_from_db, read through a statement compiled once (_SessionRead).
        using = router.db_for_read(UserSession)
        found = _session_read(using, connections[using].vendor).read(using, self.session_key)
        if found is None:
            self._session_key = None  # as Django's: a key with no live session is dropped
            self.joined_user = None
            return {}
        session_data, self.joined_user = found
        return self.decode(session_data)

    def create_model_instance(self, data: dict[str, Any]) -> UserSession:
        row = cast(UserSession, super().create_model_instance(data))
        row.user_id = _user_id(data.get(auth.SESSION_KEY))
        return row


# What the session's statement is compiled with, found again among its parameters and replaced.
_KEY_STAND_IN = "\x00session-key"
_NOW_STAND_IN = datetime(2000, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@dataclass(frozen=True)
class _SessionRead:
    """The statement Django's store reads a session with (`objects.get(session_key=...,
    expire_date__gt=now)`, the user joined by UserSessionManager), compiled once per database
    alias and vendor instead of on every signed-in request: the read with its user took 0.74-0.83
    ms compiled each time, 0.24 ms compiled once (SQLite; PostgreSQL 1.2-1.5 against 0.49,
    where the statement is also kept prepared; 2026-12, #16). The same SQL,
    the same parameters (tests/permissions/test_sessions_user_join.py compares them with
    Django's own compilation), the rows read through the columns' own converters and the user
    made with Model.from_db, as Django's iterator makes it.

    SECURITY: the key and the time are bound as parameters, never written into the SQL; the
    expiry is the statement's condition, as in Django's."""

    sql: str
    params: tuple[Any, ...]
    key_at: int
    now_at: int
    columns: tuple[Any, ...]  # what the statement selects (Col), for their converters
    data_at: int  # session_data's column
    user_at: tuple[int, ...]  # the user's columns
    user_attnames: tuple[str, ...]
    user_pk_at: int  # among the user's columns: no user joined when it is NULL

    @classmethod
    def compile(cls, using: str) -> "_SessionRead":
        rows = UserSession.objects.using(using).filter(
            session_key=_KEY_STAND_IN, expire_date__gt=_NOW_STAND_IN
        )
        compiler = rows.order_by().query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        now = _prepared_now(_NOW_STAND_IN, using)
        key_at = [i for i, value in enumerate(params) if value == _KEY_STAND_IN]
        now_at = [i for i, value in enumerate(params) if value == now]
        info = compiler.klass_info
        related = info["related_klass_infos"] if info else []
        if len(params) != 2 or len(key_at) != 1 or len(now_at) != 1 or len(related) != 1:
            raise RuntimeError("the session's statement is not the one this store reads")
        columns = tuple(column for column, _, _ in compiler.select)
        session_fields = [columns[i].target.attname for i in info["select_fields"]]
        user_at = tuple(related[0]["select_fields"])
        user_attnames = tuple(columns[i].target.attname for i in user_at)
        return cls(
            sql=sql,
            params=tuple(params),
            key_at=key_at[0],
            now_at=now_at[0],
            columns=columns,
            data_at=info["select_fields"][session_fields.index("session_data")],
            user_at=user_at,
            user_attnames=user_attnames,
            user_pk_at=user_attnames.index(auth.get_user_model()._meta.pk.attname),
        )

    def read(
        self, using: str, session_key: str | None
    ) -> tuple[str, AbstractBaseUser | None] | None:
        """The live session's data and its user (None: no user joined), or None when no live
        session has the key."""
        connection = connections[using]
        bound = list(self.params)
        bound[self.key_at] = session_key
        bound[self.now_at] = _prepared_now(timezone.now(), using)
        # Kept prepared on PostgreSQL (apollo_site.prepared_sql): a read by primary key, the
        # same plan for every key.
        with prepared_cursor(using) as cursor:
            cursor.execute(self.sql, bound)
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for at, column in enumerate(self.columns):
            for convert in (
                *connection.ops.get_db_converters(column),
                *column.get_db_converters(connection),
            ):
                values[at] = convert(values[at], column, connection)
        user_values = [values[at] for at in self.user_at]
        if user_values[self.user_pk_at] is None:
            return values[self.data_at], None
        user_model = auth.get_user_model()
        return values[self.data_at], user_model.from_db(using, self.user_attnames, user_values)


@cache
def _session_read(using: str, vendor: str) -> _SessionRead:
    """The session's statement for one database (its alias and vendor, the key of the cache)."""
    del vendor
    return _SessionRead.compile(using)


def _prepared_now(now: datetime, using: str) -> Any:
    """The expiry condition's parameter for `now`, as Django's lookup prepares it."""
    field = UserSession._meta.get_field("expire_date")
    return field.get_db_prep_value(now, connections[using], prepared=False)


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
