"""Shared fixtures: the personas of the product brief and the live server for browser tests."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client

from deployments.engine import namespace_watch
from deployments.models import Service
from environments.models import Environment
from kubesim.testing import run_kubesim
from permissions.services import grant
from permissions.verbs import Verb
from tests import factories
from tests.cluster import control_plane
from tests.live import LiveServer, start_live_server
from tests.thread_connections import close_other_threads_connections, remember_connections

# kubesim (the simulated cluster) as session fixtures: kubesim, kubesim_api, kubesim_namespace;
# tests.kubeenv: Apollo in front of it (staging environment, running worker).
pytest_plugins = ["kubesim.pytest_plugin", "tests.kubeenv"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """pytest-django's test database, and before it is dropped, the connections that threads
    outliving their tests still hold closed (tests/thread_connections.py)."""
    remember_connections()
    yield
    close_other_threads_connections()


@pytest.fixture(autouse=True)
def _no_lingering_rollout_watches() -> Iterator[None]:
    # A rollout's namespace watches stay open a few seconds for the next rollout there
    # (deployments/engine/namespace_watch.py): not into the next test, whose faults injected
    # into kubesim's watches (global: the next N watches expire) they could take.
    yield
    namespace_watch.close_unused()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2's deliberate slowness is for production; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttles(settings: Any) -> None:
    # The API throttles count in a cache that outlives a test's database rollback: each test
    # gets an empty one of its own (in memory, never a flush of a Redis shared with others).
    settings.CACHES = {
        **settings.CACHES,
        "throttles": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"throttles-{uuid.uuid4()}",
        },
    }


# bob's grant: ALLOW these verbs on availability "staging" (see permissions.rules), and view
# alone on availability "production".
BOB_VERBS = [Verb.VIEW, Verb.DEPLOY, Verb.VIEW_LOGS, Verb.CANCEL, Verb.RESTART]
CAROL_VERBS = [Verb.VIEW, Verb.VIEW_LOGS]
CAROL_AVAILABILITIES = ["staging", "production"]  # every availability the tests use


@pytest.fixture
def alice(db: None) -> User:
    """Admin."""
    return factories.make_user("alice", is_staff=True, is_superuser=True)


@pytest.fixture
def bob(db: None) -> User:
    """May deploy, cancel, restart and read logs in every staging environment; views production
    (every production environment) and does nothing else there."""
    user = factories.make_user("bob")
    grant(actor=None, user=user, verbs=BOB_VERBS, availability="staging", note="persona bob")
    grant(
        actor=None,
        user=user,
        verbs=[Verb.VIEW],
        availability="production",
        note="persona bob views production",
    )
    return user


@pytest.fixture
def carol(db: None) -> User:
    """May view everything, logs included, in every availability; deploys and changes nothing."""
    user = factories.make_user("carol")
    for availability in CAROL_AVAILABILITIES:
        grant(
            actor=None,
            user=user,
            verbs=CAROL_VERBS,
            availability=availability,
            note="persona carol",
        )
    return user


@pytest.fixture
def mallory(db: None) -> User:
    """Logged in, no grants."""
    return factories.make_user("mallory")


@pytest.fixture
def jenkins(db: None) -> User:
    """The CI user: holds an API token that may register versions only."""
    user = factories.make_user("jenkins")
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="deployments", codename="add_deployableversion"
        )
    )
    user.api_key = factories.token_for(user, "Jenkins")  # type: ignore[attr-defined]
    return user


def make_viewer(name: str = "victor") -> User:
    """A user who may view staging and production and do nothing else (not a persona: for
    tests of what `view` alone shows, such as log lines hidden from who may not read logs)."""
    user = factories.make_user(name)
    for availability in CAROL_AVAILABILITIES:
        grant(actor=None, user=user, verbs=[Verb.VIEW], availability=availability)
    return user


@pytest.fixture
def personas(alice: User, bob: User, carol: User, mallory: User) -> dict[str, User]:
    return {"alice": alice, "bob": bob, "carol": carol, "mallory": mallory}


# The catalogue most tests share: a service "checkout" and an environment "production" (the
# session-wide `staging` is kubesim's, from tests.kubeenv; tests without a cluster define theirs).
@pytest.fixture
def checkout() -> Service:
    return factories.make_service("checkout")


@pytest.fixture
def production() -> Environment:
    return factories.make_environment("production", availability="production")


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@contextmanager
def prepared_statements_off() -> Iterator[None]:
    """This connection as with APOLLO_DATABASE_PREPARED_STATEMENTS=0 (PostgreSQL only): psycopg
    prepares nothing, so apollo_site.prepared_sql's reads go through Django's usual cursor."""
    connection.ensure_connection()
    raw = connection.connection
    threshold = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield
    finally:
        raw.prepare_threshold = threshold


@pytest.fixture
def live_apollo(transactional_db: None) -> Iterator[LiveServer]:
    """Apollo's real ASGI application served by daphne in a child process."""
    with start_live_server() as server:
        yield server


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    # Browser tests are the slowest; run them last so fast failures show first.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


# -- The cluster switch -------------------------------------------------------------------------
# Tests take the `kubesim` fixture for their cluster. With APOLLO_TEST_CLUSTER=kubernetes it is the
# real control plane of cluster/ instead (started once per session from var/bin/apollo-kubernetes,
# see tests/cluster/control_plane.py); tests that need kubesim's own controls (faults, settings,
# outages, the limited token, logs and exec) are marked `kubesim_only` and skipped there.


def pytest_sessionstart(session: pytest.Session) -> None:
    # SQLite runs in WAL mode (settings.SQLITE_OPTIONS): a run that ended with connections still
    # open in its threads leaves the test database's -wal and -shm beside it, and a stale WAL
    # beside the new test database of the same name would be replayed into it.
    from django.conf import settings

    database = settings.DATABASES["default"]
    name = (database.get("TEST") or {}).get("NAME")
    if database["ENGINE"].endswith("sqlite3") and name:
        for suffix in ("-wal", "-shm"):
            Path(f"{name}{suffix}").unlink(missing_ok=True)


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "kubesim_only: needs kubesim's own controls; skipped on the real control plane"
    )


@pytest.fixture(scope="session")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if control_plane.selected() == "kubernetes":
        with control_plane.run_control_plane(tmp_path_factory.mktemp("kubernetes")) as handle:
            yield handle
    else:
        with run_kubesim(tmp_dir=tmp_path_factory.mktemp("kubesim")) as sim:
            yield sim


def pytest_runtest_setup(item: pytest.Item) -> None:
    kubesim_only = item.get_closest_marker("kubesim_only") or item.nodeid.startswith(
        "tests/kubesim/"
    )
    if kubesim_only and control_plane.selected() == "kubernetes":
        pytest.skip("kubesim only (APOLLO_TEST_CLUSTER=kubernetes)")
