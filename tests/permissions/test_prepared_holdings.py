"""On PostgreSQL the reader's grants (permissions.selectors._holdings_of_every_verb, read on
every developer's page) are a statement the connection keeps prepared (apollo_site.prepared_sql):
parsed once, then planned generically, and still counted in Django's query log. With prepared
statements off (APOLLO_DATABASE_PREPARED_STATEMENTS=0: OPTIONS prepare_threshold None) it runs
through Django's usual cursor. Either way, and after a rollback, the holdings are the query's."""

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apollo_site.prepared_sql import prepared_cursor
from permissions.selectors import holdings, reads_shared_for_one_request
from permissions.services import grant
from permissions.verbs import Effect, Verb
from tests import factories
from tests.conftest import prepared_statements_off

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's prepared statements (CI runs it)"
    ),
]

GRANTS_TABLE = "permissions_grantuserobjectpermission"


def _developer() -> User:
    staging = factories.make_environment("staging-1", availability="staging")
    checkout = factories.make_service("checkout")
    dora = factories.make_user("dora")
    team = Group.objects.create(name="team")
    dora.groups.add(team)
    grant(actor=None, user=dora, verbs=[Verb.VIEW, Verb.DEPLOY], availability="staging")
    grant(actor=None, user=dora, verbs=[Verb.DEPLOY], effect=Effect.DENY, service=checkout)
    grant(actor=None, group=team, verbs=[Verb.EXEC], environment=staging)
    return dora


def _prepared_grant_reads() -> list[tuple[int, int, bool]]:
    """(generic plans, custom plans, from SQL) of the statements this connection keeps
    prepared that read the grants."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans, from_sql FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            [f"%{GRANTS_TABLE}%"],
        )
        return list(cursor.fetchall())


def _read_in_a_request(user: User, verb: Verb) -> set[tuple[int, str, str]]:
    return _every_verb_in_a_request(user)[verb]


def _every_verb_in_a_request(user: User) -> dict[Verb, set[tuple[int, str, str]]]:
    """Every verb's holdings as a request asks them: one read of the grants, shared."""
    with reads_shared_for_one_request():
        return {
            verb: {(h.grant_id, h.holder_kind, h.effect) for h in holdings(verb=verb, user=user)}
            for verb in Verb
        }


def _from_the_query(user: User, verb: Verb) -> set[tuple[int, str, str]]:
    # Outside a request: the ORM's own query of one verb, no shared read, no prepared statement.
    return {(h.grant_id, h.holder_kind, h.effect) for h in holdings(verb=verb, user=user)}


def test_the_grants_read_is_prepared_once_and_then_planned_generically() -> None:
    dora = _developer()
    expected = {verb: _from_the_query(dora, verb) for verb in Verb}
    assert connection.connection.prepare_threshold == 0  # the settings' default
    runs = 8
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            read = _every_verb_in_a_request(dora)
        assert read == expected
        # One statement a request, in Django's query log as any other.
        assert len(queries) == 1
        # Logged with its values, as Django logs a client-bound statement: it can be run again.
        logged = queries[0]["sql"]
        assert GRANTS_TABLE in logged
        assert "$1" not in logged
        assert f"= {dora.pk}" in logged
    [(generic, custom, from_sql)] = _prepared_grant_reads()
    # Prepared through the protocol (not a PREPARE statement), once: every run used it.
    assert not from_sql
    assert generic + custom == runs
    # PostgreSQL plans it once for every user: planning was most of this statement's cost.
    assert generic >= runs - 5


def test_with_prepared_statements_off_the_grants_are_read_as_before() -> None:
    dora = _developer()
    expected = {verb: _from_the_query(dora, verb) for verb in Verb}
    with prepared_statements_off():
        for _ in range(3):
            assert _every_verb_in_a_request(dora) == expected
        assert _prepared_grant_reads() == []


def _prepare_then_roll_back(user: User, expected: set[tuple[int, str, str]]) -> None:
    """Prepared inside a transaction (a savepoint of the test's) that is rolled back."""
    with transaction.atomic():
        assert _read_in_a_request(user, Verb.DEPLOY) == expected
        raise RuntimeError("rolled back")


def test_a_rolled_back_transaction_leaves_the_prepared_read_working() -> None:
    dora = _developer()
    expected = _from_the_query(dora, Verb.DEPLOY)
    with pytest.raises(RuntimeError, match="rolled back"):
        _prepare_then_roll_back(dora, expected)
    assert _read_in_a_request(dora, Verb.DEPLOY) == expected
    grant(actor=None, user=dora, verbs=[Verb.DEPLOY], availability="production")
    again = _read_in_a_request(dora, Verb.DEPLOY)
    assert again == _from_the_query(dora, Verb.DEPLOY)
    assert len(again) == len(expected) + 1


def test_the_prepared_cursor_reads_what_djangos_cursor_reads() -> None:
    _developer()
    sql = "SELECT username, is_active, date_joined FROM auth_user WHERE username = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, ["dora"])
        expected = cursor.fetchall()
    for _ in range(3):
        with prepared_cursor("default") as cursor:
            cursor.execute(sql, ["dora"])
            assert cursor.fetchall() == expected
    assert expected
    assert expected[0][2].tzinfo is not None
