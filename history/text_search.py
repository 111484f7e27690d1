"""Word search over deployment messages and commit messages and branches, for the History page:
a full-text index instead of a LIKE scan of every deployment (issue #16: a rare word took
70-85 ms at 100,000 deployments).

- SQLite: two FTS5 tables with external content (`history_deployment_text` over
  deployments_deployment.message, `history_version_text` over deployments_deployableversion's
  commit_message and branch), kept current by triggers on those tables. A search with few
  matches reads their ids in one fixed statement (matching_ids).
- PostgreSQL: GIN indexes on `to_tsvector('simple', <the text, punctuation turned to spaces>)`;
  the queries repeat the indexed expression exactly, so the planner uses the index. The
  deployment's message is tested on the row itself (MessageMatches), never as `id IN (SELECT id
  FROM deployments_deployment WHERE ...)`: that self-join read the whole table (a hash join
  over a sequential scan, 14 ms at 100,000 deployments for a word in 200 of them), and, on a
  walk of the newest-first index, hashed every match first (40 ms for a word in every message).
  The deployments of the versions found are read as ids from a covering index
  (PG_COVERING_INDEXES), not from their rows.

A search is the words of the text (letters, digits, underscore), each a prefix, all required in
the deployment's message, or all in the commit's message and branch: "feature/speed" finds the
branch feature/speed, "bask" finds "Fix the basket". Not a substring search inside a word
("asket" finds nothing).

The schema is made by `ensure_schema`, called after every `migrate` (history.apps): on SQLite a
migration that rebuilds one of the two tables (Django copies the table and drops the old one)
drops its triggers with it; recreating what is missing and rebuilding the index then keeps the
search right whatever another app's migrations do. Each statement is idempotent.
"""

import json
import re
from typing import Any, NamedTuple

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, F, Func, Q
from django.db.models.expressions import RawSQL
from django.db.models.sql.compiler import SQLCompiler

from apollo_site.prepared_sql import prepared_cursor

WORD = re.compile(r"\w+")
MAX_WORDS = 8

# (FTS5 table, content table, columns)
SQLITE_TABLES = (
    ("history_deployment_text", "deployments_deployment", ("message",)),
    ("history_version_text", "deployments_deployableversion", ("commit_message", "branch")),
)


def _normalised(column: str) -> str:
    # PostgreSQL's parser would keep "feature/speed" as one path token: words only.
    return f"regexp_replace(coalesce({column}, ''), '[^[:alnum:]_]+', ' ', 'g')"


PG_DEPLOYMENT_TEXT = f"to_tsvector('simple', {_normalised('message')})"
PG_VERSION_TEXT = (
    f"to_tsvector('simple', {_normalised('commit_message')} || ' ' || {_normalised('branch')})"
)
PG_INDEXES = (
    ("history_deployment_text_idx", "deployments_deployment", PG_DEPLOYMENT_TEXT),
    ("history_version_text_idx", "deployments_deployableversion", PG_VERSION_TEXT),
)
# PostgreSQL: the deployments of the versions a search found, read as ids alone (the commit way
# of PG_MATCHES) from the index, without a visit to each row: from the foreign key's index,
# pg_matching_ids read a commit word's 1,050 deployments from 1,050 table pages (EXPLAIN
# ANALYZE at 100,000 deployments: statement 2.78 -> 1.43 ms at best, 7.9 -> 1.6 ms median on a
# loaded machine). Rows too recent for the visibility map are still visited, as before. With
# created_at too, for the newest matches a first page reads (PG_IDS). About 3 MB at 100,000
# deployments. SQLite's index on version_id holds the rowid (the id) already.
PG_COVERING_INDEXES = (
    (
        "history_deployment_version_recent_idx",
        "deployments_deployment",
        "version_id",
        "id, created_at",
    ),
)
# Indexes an earlier PG_COVERING_INDEXES made, dropped by ensure_schema.
PG_RETIRED_INDEXES = ("history_deployment_version_ids_idx",)


class MessageMatches(Func):
    """PostgreSQL: the deployment's message has every word of the search (a to_tsquery text):
    PG_DEPLOYMENT_TEXT on the row's own message column, whatever alias the query gives the
    table, so that the planner reads history_deployment_text_idx (or tests a row it walks)."""

    output_field = BooleanField()
    template = (
        f"to_tsvector('simple', {_normalised('%(expressions)s')}) @@ to_tsquery('simple', %%s)"
    )

    def __init__(self, search: str) -> None:
        super().__init__(F("message"))
        self.search = search

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        sql, params = super().as_sql(
            compiler, connection, function, template, arg_joiner, **extra_context
        )
        return sql, (*params, self.search)  # SECURITY: the words travel as a parameter


# SECURITY: the statements are built from this module's constants only; the searched words
# always travel as a parameter (%s).
SQL = {
    ("sqlite", "message"): "SELECT rowid FROM history_deployment_text "
    "WHERE history_deployment_text MATCH %s",
    (
        "sqlite",
        "commit",
    ): "SELECT rowid FROM history_version_text WHERE history_version_text MATCH %s",
    ("sqlite", "count"): "SELECT count(*) FROM (SELECT rowid FROM history_deployment_text "
    "WHERE history_deployment_text MATCH %s LIMIT %s)",
    ("postgresql", "commit"): "SELECT id FROM deployments_deployableversion "  # noqa: S608
    f"WHERE {PG_VERSION_TEXT} @@ to_tsquery('simple', %s)",
}

# SQLite: the ids of every match of a search, each way it may match (a UNION: one id once),
# read up to a limit and returned as their count and one JSON array (for AmongIds).
SQLITE_MATCHES = {
    "message": "SELECT rowid AS id FROM history_deployment_text "
    "WHERE history_deployment_text MATCH %s",
    "commit": 'SELECT id FROM "deployments_deployment" WHERE version_id IN '
    "(SELECT rowid FROM history_version_text WHERE history_version_text MATCH %s)",
    # Django's icontains and startswith on SQLite: LIKE (case-insensitive), \\ escaping % and _.
    "user": 'SELECT id FROM "deployments_deployment" WHERE deployed_by_id IN '
    "(SELECT id FROM auth_user WHERE username LIKE %s ESCAPE '\\')",
    "sha": 'SELECT id FROM "deployments_deployment" WHERE version_id IN '
    "(SELECT id FROM deployments_deployableversion WHERE git_commit_sha LIKE %s ESCAPE '\\')",
}
SQLITE_IDS = "SELECT count(*), coalesce(json_group_array(id), '[]') FROM ({} LIMIT %s)"

# PostgreSQL: the same ways, as Django's lookups write them (icontains: UPPER ... LIKE UPPER,
# startswith: LIKE; \\ escaping % and _), for pg_matching_ids.
PG_MATCHES = {
    "message": f"{PG_DEPLOYMENT_TEXT} @@ to_tsquery('simple', %s)",
    "commit": "version_id IN (SELECT id FROM deployments_deployableversion "  # noqa: S608
    f"WHERE {PG_VERSION_TEXT} @@ to_tsquery('simple', %s))",
    "user": "deployed_by_id IN (SELECT id FROM auth_user "
    "WHERE UPPER(username::text) LIKE UPPER(%s))",
    "sha": "version_id IN (SELECT id FROM deployments_deployableversion "
    "WHERE git_commit_sha::text LIKE %s)",
}
# The newest {probe} deployments tested row by row (how many match, counting no further than
# a quarter of them, {enough}: the plan's choice; a common word is known after a few rows), then,
# only when fewer than a quarter match, each way read from its own index (UNION ALL: a row
# matching two ways counts twice), up to a limit, their count, their distinct ids and the ids
# of the newest of them, up to a second limit (arrays in text). {any} is the ways ORed, {each}
# each way as a SELECT of ids and creation times.
PG_IDS = """WITH probe AS (SELECT count(*) AS n FROM (SELECT FROM (SELECT id, message, version_id,
deployed_by_id FROM "deployments_deployment"
ORDER BY created_at DESC, id DESC LIMIT {probe}) d WHERE {any} LIMIT {enough}) m),
found AS (SELECT u.id, u.created_at FROM ({each} LIMIT %s) u
WHERE (SELECT n FROM probe) * 4 < {probe})
SELECT (SELECT n FROM probe), (SELECT count(*) FROM found),
coalesce((SELECT array_agg(DISTINCT id)::text FROM found), '{{}}'),
coalesce((SELECT array_agg(id)::text FROM (SELECT id FROM found GROUP BY id, created_at
ORDER BY created_at DESC, id DESC LIMIT %s) newest), '{{}}')"""


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())[:MAX_WORDS]


def _word_starts(found: list[str]) -> tuple[Q, Q]:
    """The same test made on each row, by regular expression (a word starting with each
    word): for a walk of the newest-first index, where a common word fills a page after a
    few rows (SQLite would otherwise read the index's whole list of matches first)."""
    by_message, by_commit = Q(), Q()
    for word in found:
        start = rf"\b{word}"  # words are \w+: nothing to escape
        by_message &= Q(message__iregex=start)
        by_commit &= Q(version__commit_message__iregex=start) | Q(version__branch__iregex=start)
    return by_message, by_commit


def matching_deployments(text: str, vendor: str, *, per_row: bool = False) -> list[Q]:
    """Conditions on Deployment, one per text searched (its message; its version's commit
    message and branch), each true when the text has every word of the search (as a prefix);
    none without a word. A caller may read each from its own index and unite them, or, with
    `per_row` (SQLite: tested on each row instead of read from the index), OR them."""
    found = words(text)
    if not found:
        return []
    if vendor == "sqlite" and per_row:
        return list(_word_starts(found))
    if vendor == "sqlite":
        query = " ".join(f'"{word}"*' for word in found)  # each word a quoted prefix
    elif vendor == "postgresql":  # the same conditions serve the index and a row-by-row test
        query = " & ".join(f"{word}:*" for word in found)
        return [
            Q(MessageMatches(query)),
            Q(version_id__in=RawSQL(SQL[(vendor, "commit")], (query,))),  # noqa: S611 -- see SQL
        ]
    else:  # another database: the slow scan, same words
        by_message, by_commit = Q(), Q()
        for word in found:
            by_message &= Q(message__icontains=word)
            by_commit &= Q(version__commit_message__icontains=word) | Q(
                version__branch__icontains=word
            )
        return [by_message, by_commit]
    return [
        Q(pk__in=RawSQL(SQL[(vendor, "message")], (query,))),  # noqa: S611 -- see SQL
        Q(version_id__in=RawSQL(SQL[(vendor, "commit")], (query,))),  # noqa: S611 -- see SQL
    ]


class AmongIds(Func):
    """The deployment's id is one of `ids`, given as one parameter however many they are: a
    JSON array read by json_each on SQLite, an array on PostgreSQL (the plan of `= ANY` over a
    constant array is the plan of an IN list: PostgreSQL turns one into the other). As a list
    (`pk__in=[...]`), Django prepared each value of the lookup and psycopg split the statement
    at each of its placeholders: a commit-message word's 1,050 ids cost more Python than the
    page's every other read (cProfile: batch_process_rhs, get_prep_lookup, _split_query)."""

    output_field = BooleanField()
    template = "%(expressions)s = ANY(%%s)"

    def __init__(self, ids: list[int] | str) -> None:
        """`ids`: a list, or (SQLite) a JSON array of them (matching_ids)."""
        super().__init__(F("pk"))
        self.ids = ids

    @staticmethod
    def parameter(ids: list[int] | str, connection: BaseDatabaseWrapper) -> Any:
        """What the condition binds for `ids` on the connection's database: a JSON array on
        SQLite, the list elsewhere."""
        if connection.vendor == "sqlite":
            return ids if isinstance(ids, str) else json.dumps(ids)
        return ids

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        ids = self.parameter(self.ids, connection)
        if connection.vendor == "sqlite":
            template = "%(expressions)s IN (SELECT value FROM json_each(%%s))"
        else:
            # The array typed as the id column: psycopg sends small ints as integer[], and
            # bigint = ANY(integer[]) is tested element by element (not hashed), so the planner
            # read the 1,050 rows by primary key and sorted them (7.9 ms) rather than walk the
            # newest-first index testing each row against the hashed ids (6.2 ms).
            id_type = self.get_source_expressions()[0].output_field.cast_db_type(connection)
            template = f"%(expressions)s = ANY(%%s::{id_type}[])"
        sql, params = super().as_sql(
            compiler, connection, function, template, arg_joiner, **extra_context
        )
        # SECURITY: the ids (integers read from the database) travel as a parameter.
        return sql, (*params, ids)


def matching_ids(
    text: str, connection: BaseDatabaseWrapper, *, sha_prefix: bool, up_to: int
) -> tuple[int, str]:
    """SQLite: how many deployments a search matches, counting no further than up_to, and
    their ids as one JSON array (for AmongIds): each way a deployment may match, read from its
    index (its message, its commit's message and branch: FTS5; who deployed it: part of the
    user name; with `sha_prefix`, its commit's sha starting with the text), united.

    The conditions of the per-row plan (matching_deployments and the selector's others),
    written as one fixed statement: built as Django querysets and compiled each request,
    united and read back as ints to be written again as JSON, the same ids cost 1.9 ms of
    Python for 0.2 ms of SQLite (a word in 200 messages, loaded machine)."""
    found = words(text)
    query = " ".join(f'"{word}"*' for word in found)  # each word a quoted prefix
    ways = _ways(text, query if found else None, connection, sha_prefix=sha_prefix)
    union = " UNION ".join(SQLITE_MATCHES[way] for way, _ in ways)
    with connection.cursor() as cursor:
        # SECURITY: the statement is this module's constants; the text travels as parameters.
        cursor.execute(SQLITE_IDS.format(union), (*(value for _, value in ways), up_to))
        count, ids = cursor.fetchone()
    return int(count), str(ids)


def _ways(
    text: str, query: str | None, connection: BaseDatabaseWrapper, *, sha_prefix: bool
) -> list[tuple[str, str]]:
    """The ways a search matches, each with its parameter: the message's and the commit's
    full-text `query` (None: the text has no word), a user name containing the text and,
    with `sha_prefix`, a sha starting with it (LIKE's wildcards taken literally)."""
    like = connection.ops.prep_for_like_query(text)
    ways = [("user", f"%{like}%")]
    if query is not None:
        ways = [("message", query), ("commit", query), *ways]
    if sha_prefix:
        ways.append(("sha", f"{like.lower()}%"))
    return ways


class PgMatches(NamedTuple):
    """What pg_matching_ids read (arrays in text, for AmongIds)."""

    probed: int  # matches among the newest `probe` deployments, counted up to a quarter
    found: int  # rows read from the ways' indexes (0 for a common word)
    ids: str  # their distinct ids
    newest: str  # the ids of the newest `newest` of them, by (created_at, id)


def pg_matching_ids(
    text: str,
    connection: BaseDatabaseWrapper,
    *,
    sha_prefix: bool,
    probe: int,
    up_to: int,
    newest: int = 0,
) -> PgMatches:
    """PostgreSQL, one statement (PG_IDS): how many of the newest `probe` deployments a search
    matches, counting no further than a quarter of them (rounded up); then, only when fewer
    than a quarter of them do, how many rows reading each way from its index gave (up to
    `up_to`; a row matching two ways counts twice), their distinct ids and the ids of the
    `newest` most recent of them, else 0 and "{}"s. The ways of matching_deployments and the
    selector's others (a user name containing the text; with `sha_prefix`, a sha starting
    with it), written as fixed SQL: built as querysets, the probe, the union and their
    compilation were two statements and a third of a millisecond of Python more, and the ids
    came back as Python ints to be sent back."""
    found = words(text)
    query = " & ".join(f"{word}:*" for word in found)
    ways = _ways(text, query if found else None, connection, sha_prefix=sha_prefix)
    conditions = [PG_MATCHES[way] for way, _ in ways]
    values = [value for _, value in ways]
    each = " UNION ALL ".join(
        f'(SELECT id, created_at FROM "deployments_deployment" WHERE {c})'  # noqa: S608
        for c in conditions
    )
    # SECURITY: the statement is this module's constants; the text travels as parameters.
    enough = -(-int(probe) // 4)  # a quarter, rounded up: n * 4 >= probe
    sql = PG_IDS.format(probe=int(probe), enough=enough, any=" OR ".join(conditions), each=each)
    # Kept prepared (apollo_site.prepared_sql) without a sha: each way then reads its own
    # index whatever the words (a common word never runs the reads: the probe stops it), so
    # PostgreSQL's generic plan is the plan every search had, without planning it each time
    # (History's searches: 6-11 % less time, A/B in one process, 2026-12). With a sha, the
    # LIKE's prefix is what lets it read the sha's index: planned for each value, as Django
    # plans its own statements.
    opened = connection.cursor() if sha_prefix else prepared_cursor(connection.alias)
    with opened as cursor:
        cursor.execute(sql, (*values, *values, up_to, newest))
        probed, count, ids, newest_ids = cursor.fetchone()
    return PgMatches(int(probed), int(count), str(ids), str(newest_ids))


def messages_found(text: str, connection: BaseDatabaseWrapper, *, up_to: int) -> int:
    """How many deployment messages have every word, counting no further than up_to (SQLite
    reads its index's matches as a stream and stops; elsewhere a LIMIT-ed count).

    The whole words are counted first: FTS5 streams one word's matches and stops at the
    LIMIT, whereas a prefix first merges the lists of every word it begins (4,000 matches of
    "deployment" in 100,000 messages: 0.2 ms whole, 6.6 ms as a prefix, 3.3 ms even up to
    200). A message with the whole words has the prefixes too: up_to of those is enough."""
    found = words(text)
    if not found or connection.vendor != "sqlite":
        return 0 if not found else -1  # -1: not counted here
    whole = " ".join(f'"{word}"' for word in found)
    prefixes = " ".join(f'"{word}"*' for word in found)  # each word a quoted prefix
    with connection.cursor() as cursor:
        cursor.execute(SQL[("sqlite", "count")], (whole, up_to))
        count = int(cursor.fetchone()[0])
        if count < up_to:
            cursor.execute(SQL[("sqlite", "count")], (prefixes, up_to))
            count = int(cursor.fetchone()[0])
        return count


# The schema statements below interpolate only the table and column names of SQLITE_TABLES,
# PG_INDEXES and PG_COVERING_INDEXES (constants): nothing from a request.
def _sqlite_statements(table: str, content: str, columns: tuple[str, ...]) -> list[str]:
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    delete = f"INSERT INTO {table}({table}, rowid, {names}) VALUES ('delete', old.id, {old});"  # noqa: S608
    insert = f"INSERT INTO {table}(rowid, {names}) VALUES (new.id, {new});"  # noqa: S608
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5({names}, content='{content}', "
        "content_rowid='id')",
        f"CREATE TRIGGER IF NOT EXISTS {table}_ai AFTER INSERT ON {content} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_ad AFTER DELETE ON {content} BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_au AFTER UPDATE OF {names} ON {content} "
        f"BEGIN {delete} {insert} END",
    ]


def ensure_schema(connection: BaseDatabaseWrapper) -> None:
    """Create what is missing of the search schema; rebuild an SQLite index whose triggers were
    missing (its table was rebuilt by a migration, or the index is new)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for table, content, columns in SQLITE_TABLES:
                if not _has_table(cursor, content):
                    continue
                cursor.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s",
                    (f"{table}_a_",),
                )
                complete = cursor.fetchone()[0] == 3
                for statement in _sqlite_statements(table, content, columns):
                    cursor.execute(statement)
                if not complete:
                    cursor.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")  # noqa: S608
        elif connection.vendor == "postgresql":
            for name, content, expression in PG_INDEXES:
                if _has_table(cursor, content):
                    cursor.execute(
                        f"CREATE INDEX IF NOT EXISTS {name} ON {content} USING gin ({expression})"
                    )
            for name, content, key, included in PG_COVERING_INDEXES:
                if _has_table(cursor, content):
                    held = f"({key}) INCLUDE ({included})"
                    cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {content} {held}")
            for name in PG_RETIRED_INDEXES:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")


def _has_table(cursor: Any, name: str) -> bool:
    return name in cursor.db.introspection.table_names(cursor)
