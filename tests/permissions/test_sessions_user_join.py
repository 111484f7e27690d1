"""Sessions that know their user (permissions.sessions): a signed-in page reads its session and
its user in one statement, and every guarantee of Django's sessions holds."""

import hashlib
import inspect
from datetime import timedelta

import django.contrib.auth
import pytest
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session as DjangoSession
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from permissions.sessions import SessionStore, UserSession
from tests import factories

pytestmark = pytest.mark.django_db

HOME = "/"


def _signed_in(client: Client) -> bool:
    response = client.get(HOME)
    if response.status_code == 302:
        assert response["Location"].startswith("/login/")
        return False
    assert response.status_code == 200
    return True


def _row(client: Client) -> UserSession:
    key: str = client.cookies[settings.SESSION_COOKIE_NAME].value
    return UserSession.objects.get(session_key=key)


def test_a_signed_in_page_reads_its_session_and_its_user_in_one_statement(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    client.get(HOME)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(HOME).status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    # The session with its user, then the page's own two (environments, deployments): no
    # statement of its own for the user.
    assert len(statements) == 3, statements
    first = statements[0]
    assert 'FROM "permissions_user_session"' in first
    assert 'JOIN "auth_user"' in first
    # (The page's deployments name their deployer, by a join or a subquery of its own.)
    assert not [sql for sql in statements if sql.startswith('SELECT "auth_user".')]


def test_the_session_row_names_its_user_from_the_login_on(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    assert _row(client).user_id == alice.pk


def test_a_password_log_in_cycles_the_key_and_names_the_user(alice: User) -> None:
    alice.set_password("alice-password-0123")
    alice.save()
    client = Client()
    anonymous = client.session  # a session before the log-in (the test client saves it)
    anonymous["before"] = "kept"
    anonymous.save()
    anonymous_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert _row(client).user_id is None
    response = client.post("/login/", {"username": "alice", "password": "alice-password-0123"})
    assert response.status_code == 302
    row = _row(client)
    assert row.session_key != anonymous_key
    assert row.user_id == alice.pk
    assert not UserSession.objects.filter(session_key=anonymous_key).exists()
    assert SessionStore(session_key=row.session_key).load()["before"] == "kept"
    assert _signed_in(client)


def test_a_logout_signs_out_every_copy_of_the_cookie(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    copy = Client()
    copy.cookies = client.cookies.__class__(client.cookies)  # the same cookie, elsewhere
    assert _signed_in(copy)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.post("/logout/")
    assert not UserSession.objects.filter(session_key=key).exists()
    assert not _signed_in(copy)


def test_a_password_change_signs_the_other_sessions_out(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    assert _signed_in(client)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    alice.set_password("another-password-0123")
    alice.save()
    assert not _signed_in(client)
    assert not UserSession.objects.filter(session_key=key).exists()  # flushed, as Django does


def test_an_expired_session_is_anonymous(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    UserSession.objects.filter(pk=_row(client).pk).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert not _signed_in(client)


def test_an_inactive_user_is_anonymous(bob: User) -> None:
    client = Client()
    client.force_login(bob, backend="django.contrib.auth.backends.ModelBackend")
    assert _signed_in(client)
    User.objects.filter(pk=bob.pk).update(is_active=False)
    assert not _signed_in(client)


def test_a_deleted_user_takes_their_sessions_with_them() -> None:
    user = factories.make_user("temporary")
    client = Client()
    client.force_login(user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    user.delete()
    assert not UserSession.objects.filter(session_key=key).exists()
    assert not _signed_in(client)


def test_a_session_whose_user_column_is_empty_still_finds_its_user(alice: User) -> None:
    # A session copied without its user (or saved before the column existed): the backend's
    # own read answers, as Django's sessions did.
    client = Client()
    client.force_login(alice)
    UserSession.objects.filter(pk=_row(client).pk).update(user=None)
    assert _signed_in(client)


def test_a_session_whose_user_row_is_gone_is_anonymous(alice: User) -> None:
    # The column names a user the table no longer has (deleted outside the ORM: the column has
    # no constraint): nothing is joined, the backend's own read finds nobody.
    client = Client()
    client.force_login(alice)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    with connection.cursor() as cursor:
        cursor.execute('DELETE FROM "auth_user" WHERE "id" = %s', [alice.pk])
    store = SessionStore(session_key=key)
    assert store.load()[SESSION_KEY] == str(alice.pk)
    assert store.joined_user is None
    assert not _signed_in(client)


def test_a_key_with_no_live_session_loads_nothing_and_is_dropped(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    UserSession.objects.filter(session_key=key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    # Both keys are of Django's alphabet, so both reach the database: one expired, one never made.
    for missing in (key, "nosuchsessionkey0123456789abcdef"):
        store = SessionStore(session_key=missing)
        with CaptureQueriesContext(connection) as queries:
            assert store.load() == {}
        assert [q for q in queries.captured_queries if missing in q["sql"]]  # it was read
        assert store.joined_user is None
        assert store.session_key is None  # as Django's store: the key is not reused


@pytest.mark.parametrize(
    "cookie",
    [
        "abcdefgh\x00ijklmnop",  # PostgreSQL refuses a NUL: the page was a 500
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
        "a" * 41,  # longer than the column
        "sessionkey-with-\u00e9-in-it",
        "' OR '1'='1",
    ],
)
def test_a_cookie_no_session_key_looks_like_is_anonymous_and_never_read(
    alice: User, cookie: str
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(alice)  # a live session exists: the forged cookie replaces its key
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    with CaptureQueriesContext(connection) as queries:
        response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not [q for q in queries.captured_queries if "user_session" in q["sql"]]


def test_the_session_is_read_with_the_statement_django_compiles(alice: User) -> None:
    """The statement compiled once (sessions._SessionRead) is the one Django compiles for its
    store's read, with the same parameters: the key and the current time as the expiry
    lookup prepares it."""
    from permissions import sessions

    client = Client()
    client.force_login(alice)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    read = sessions._session_read(connection.alias, connection.vendor)
    with CaptureQueriesContext(connection) as queries:
        SessionStore(session_key=key).load()
    assert len(queries.captured_queries) == 1  # the session, its user joined
    now = timezone.now()
    django_sql, django_params = (
        UserSession.objects.filter(session_key=key, expire_date__gt=now)
        .order_by()
        .query.get_compiler(connection.alias)
        .as_sql()
    )
    assert read.sql == django_sql
    bound = list(read.params)
    bound[read.key_at] = key
    bound[read.now_at] = sessions._prepared_now(now, connection.alias)
    assert bound == list(django_params)


def test_the_joined_user_is_the_user_django_reads(alice: User) -> None:
    # Every field as the ORM gives it: aware datetimes, booleans, the password's hash.
    alice.last_login = timezone.now() - timedelta(days=3)
    alice.first_name, alice.is_staff = "Alice", True
    alice.save()
    client = Client()
    client.force_login(alice)
    store = SessionStore(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value)
    store.load()
    joined = store.joined_user
    expected = User.objects.get(pk=alice.pk)
    assert isinstance(joined, User)
    assert joined._state.db == expected._state.db
    assert not joined._state.adding
    for field in User._meta.concrete_fields:
        got, want = getattr(joined, field.attname), getattr(expected, field.attname)
        assert (got, type(got)) == (want, type(want)), field.name


def test_a_session_of_a_backend_no_longer_configured_is_anonymous(alice: User) -> None:
    client = Client()
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    assert _signed_in(client)
    backends = [b for b in settings.AUTHENTICATION_BACKENDS if not b.endswith(".ModelBackend")]
    with override_settings(AUTHENTICATION_BACKENDS=backends):
        assert not _signed_in(client)


def test_a_rotated_secret_key_keeps_the_session_and_cycles_its_key(alice: User) -> None:
    old_key = "an-old-secret-key-" + "x" * 40
    with override_settings(SECRET_KEY=old_key):
        client = Client()
        client.force_login(alice)
        before = client.cookies[settings.SESSION_COOKIE_NAME].value
    with override_settings(SECRET_KEY_FALLBACKS=[old_key]):
        # The session data was signed with the old key too: re-sign it with the new one, as
        # a session written before the rotation and read after would be.
        row = UserSession.objects.get(session_key=before)
        with override_settings(SECRET_KEY=old_key):
            data = SessionStore().decode(row.session_data)
        row.session_data = SessionStore().encode(data)
        row.save()
        assert _signed_in(client)
        after = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert after != before
        assert UserSession.objects.get(session_key=after).session_data
        assert SessionStore(session_key=after).load()[HASH_SESSION_KEY] == (
            alice.get_session_auth_hash()
        )


def test_the_upgrade_keeps_who_was_signed_in(alice: User) -> None:
    from importlib import import_module

    from django.apps import apps

    migration = import_module("permissions.migrations.0007_user_session")
    old = DjangoStore()
    old.update({SESSION_KEY: str(alice.pk), "other": 1})
    old.create()
    expired = DjangoStore()
    expired.update({SESSION_KEY: str(alice.pk)})
    expired.create()
    DjangoSession.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    migration.keep_signed_in(apps, connection.schema_editor())
    copied = UserSession.objects.get(session_key=old.session_key)
    assert copied.user_id == alice.pk
    assert SessionStore(session_key=old.session_key).load()["other"] == 1
    assert not UserSession.objects.filter(session_key=expired.session_key).exists()


# permissions.sessions.get_user mirrors Django's get_user after the backend's read. An upgrade
# of Django that changes it must be compared with ours before this digest is updated.
DJANGO_GET_USER_SHA256 = "08a852f701f765bc91f251764cc682d2d3f59d5d0fdfa2e1fc6fb9bba45ba960"


def test_get_user_still_mirrors_djangos() -> None:
    source = inspect.getsource(django.contrib.auth.get_user)
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == DJANGO_GET_USER_SHA256, (django.VERSION, digest)
