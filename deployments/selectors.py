"""Reads for the deployment pages: versions to offer, a deployment with what its page shows,
history pages (keyset) and the comparison of two deployments.

Every function here reads; state changes live in deployments.services.
"""

import difflib
import operator
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, cached_property, lru_cache, reduce
from typing import Any, NamedTuple, TypedDict

from django.contrib.auth.models import AnonymousUser, User
from django.db import connections
from django.db.models import F, Model, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apollo_site.prepared_sql import prepared_cursor
from deployments.controls import Control, batch_controls
from deployments.models import (
    LAST_DONE_ORDER,
    BadVersion,
    CIStatus,
    DeployableVersion,
    Deployment,
    DeploymentQuerySet,
    Group,
    Service,
)
from deployments.status import Status
from environments.models import Environment
from history.text_search import (
    AmongIds,
    matching_deployments,
    matching_ids,
    messages_found,
    pg_matching_ids,
)
from permissions import blocker_config
from permissions.blockers import in_window, read_by_sql
from permissions.models import Blocker
from permissions.rules import HoldingIndex, allowed_scopes, decide, sentence
from permissions.rules import Target as RuleTarget
from permissions.selectors import Visibility, allowed_targets, catalogue, holdings, visibility
from permissions.services import explain
from permissions.verbs import Verb

RECENT_VERSIONS = 20
MIN_PREFIX = 4
HEX_RE = re.compile(r"^[0-9a-f]+$")


class TableRow(TypedDict):
    """What a deployment table (deployments/_rows.html) shows of one deployment. Read as plain
    rows rather than model instances: a page of 50 deployments was ~250 model objects (the
    deployment, its service, environment, version and user), ~2 ms of the History page. A
    dict, not a tuple: a template looks a name up in a dict first (a tuple raises first)."""

    pk: int
    status: str
    message: str
    created_at: datetime
    service_name: str
    environment_name: str
    sha: str
    deployed_by_name: str
    group_name: str | None


# TableRow's keys: the deployment's own columns, and the related ones' under their row names. A
# column the rows start showing must be added to all three.
_TABLE_COLUMNS = ("pk", "status", "message", "created_at")
_TABLE_RELATED = {
    "service_name": F("service__name"),
    "environment_name": F("environment__name"),
    "sha": F("version__git_commit_sha"),
    "deployed_by_name": F("deployed_by__username"),
    "group_name": F("group__name"),
}


def _column_of(model: type[Model], column: str, key: str) -> Subquery:
    """The related row's column, read by primary key for each row of the page."""
    return Subquery(model._default_manager.filter(pk=OuterRef(key)).order_by().values(column))


# PostgreSQL: one subquery per name rather than five joins. It plans every statement it is sent
# (Django's statements are not prepared), and the six-table join took longer to plan than to
# run: History's first page at 100,000 deployments 2.5 ms of planning for 0.4 ms of reading;
# the subqueries plan in 0.1 ms and read the same rows by primary key. Not on SQLite, which
# plans joins at no cost and runs the subqueries slower (50 rows: 0.7 -> 2.0 ms).
_TABLE_RELATED_PG = {
    "service_name": _column_of(Service, "name", "service_id"),
    "environment_name": _column_of(Environment, "name", "environment_id"),
    "sha": _column_of(DeployableVersion, "git_commit_sha", "version_id"),
    "deployed_by_name": _column_of(User, "username", "deployed_by_id"),
    "group_name": _column_of(Group, "name", "group_id"),
}


@cache
def _table_related_pg_sql(using: str) -> dict[str, RawSQL]:
    """_TABLE_RELATED_PG as the SQL Django compiles for it, compiled once per process and
    database: each Subquery was resolved, cloned and compiled again for every page (0.2-0.3 ms
    of History's CPU on PostgreSQL). The page's statement is the same text
    (tests/pages_perf/test_table_rows_sql.py); the subqueries name the page's table by its own
    name, as they do in a page's statement, where it is never aliased."""
    query = Deployment.objects.using(using).values(**_TABLE_RELATED_PG).query
    compiler = query.get_compiler(using=using)
    compiled = {}
    for name in _TABLE_RELATED_PG:
        subquery = query.annotations[name]
        sql, params = compiler.compile(subquery)
        # RawSQL puts the parentheses of its subquery back.
        if not (sql.startswith("(") and sql.endswith(")")):
            raise RuntimeError(f"unexpected SQL for the {name} column: {sql}")
        # SECURITY: Django's own compilation of _TABLE_RELATED_PG (constants), no input.
        compiled[name] = RawSQL(sql[1:-1], params, output_field=subquery.output_field)  # noqa: S611
    return compiled


@dataclass(frozen=True)
class KnownNames:
    """Every service's and environment's name, as the request has read them already (the
    History page's filter form reads both tables whole for its options), by id when asked."""

    service_rows: list[tuple[int, str]]  # (id, name)
    environment_rows: list[tuple[int, str, str]]  # (id, availability, name)

    @cached_property
    def services(self) -> dict[int, str]:
        return dict(self.service_rows)

    @cached_property
    def environments(self) -> dict[int, str]:
        return {pk: name for pk, _, name in self.environment_rows}


# The related names KnownNames holds, and the ids the rows carry for them instead.
_KNOWN = {"service_name": "service_id", "environment_name": "environment_id"}


def table_rows(
    deployments: QuerySet[Deployment], *, names: KnownNames | None = None
) -> list[TableRow]:
    """The deployments as table rows, in one query (no large text or JSON column, no model
    instance).

    With `names` on PostgreSQL, each row's service and environment are named from them rather
    than read again for every row: two of the five subqueries per row, 102 reads by primary
    key for a page of 50. History's pages took 0.93-0.97x as long (A/B in one process, 100,000
    deployments, 2026-12). Not on SQLite, whose joins cost next to nothing: there the same
    pages took 1.03-1.04x as long with them."""
    using = deployments.db
    if connections[using].vendor != "postgresql":
        return list(deployments.values(*_TABLE_COLUMNS, **_TABLE_RELATED))
    related = _table_related_pg_sql(using)
    if names is None:
        return list(deployments.values(*_TABLE_COLUMNS, **related))
    others = {name: column for name, column in related.items() if name not in _KNOWN}
    rows = list(deployments.values(*_TABLE_COLUMNS, *_KNOWN.values(), **others))
    return _named(rows, names, using)


def _named(rows: list[Any], names: KnownNames, using: str) -> list[TableRow]:
    """The rows with their service's and environment's names in place of their ids. A name the
    request did not read (a service or environment created since, whose deployment the page
    shows) is read now, in one statement per table, as the subqueries would have read it."""
    services, environments = names.services, names.environments
    missing_services = {row["service_id"] for row in rows} - services.keys()
    missing_environments = {row["environment_id"] for row in rows} - environments.keys()
    if missing_services:
        found = Service.objects.using(using).filter(pk__in=missing_services)
        services = {**services, **dict(found.values_list("pk", "name"))}
    if missing_environments:
        found_environments = Environment.objects.using(using).filter(pk__in=missing_environments)
        environments = {**environments, **dict(found_environments.values_list("pk", "name"))}
    for row in rows:
        row["service_name"] = services[row.pop("service_id")]
        row["environment_name"] = environments[row.pop("environment_id")]
    return rows


# -- versions -------------------------------------------------------------------------------


def recent_versions(services: list[Service], limit: int = RECENT_VERSIONS) -> list[Any]:
    """The newest versions of each service (one query per service, served by
    version_recent_idx), as (service, [versions]) pairs in the order given. The SQL is
    _recent_sql's, with each service's id."""
    sql, before, after = _recent_sql(limit)
    db = DeployableVersion.objects.db
    recent = []
    with prepared_cursor(db) as cursor:
        for service in services:
            cursor.execute(sql, [*before, service.pk, *after])
            versions = [
                DeployableVersion.from_db(
                    db, _VERSION_COLUMNS, _converted(row, _VERSION_COLUMNS, _VERSION_DATES)
                )
                for row in cursor.fetchall()
            ]
            recent.append((service, versions))
    return recent


# Every column of a version, in the model's order (as Django selects them), and its dates.
_VERSION_COLUMNS = [f.attname for f in DeployableVersion._meta.concrete_fields]
_VERSION_DATES = {"committed_at", "created_at"}


@lru_cache(maxsize=8)
def _recent_sql(limit: int) -> tuple[str, list[Any], list[Any]]:
    """recent_versions' SQL, compiled by Django once per process and limit (as
    _last_done_sql): compiling the filter, the model's order and the columns was most of a
    service's read, on every Deploy page with a choice and every picker. The service's id is
    located by a stand-in no id can be (-1)."""
    stand_in = [-1]
    query = DeployableVersion.objects.filter(service=stand_in[0])[:limit]
    sql, bound = query.query.sql_with_params()
    return sql, *_around(list(bound), stand_in, "recent_versions'")


class VersionLookupError(Exception):
    """A sha prefix or a branch that does not name exactly one version."""


def versions_for_sha(services: list[Service], sha_or_prefix: str) -> dict[int, DeployableVersion]:
    """For each service (by pk), its version whose sha starts with the prefix.

    A prefix that names several commits is an error listing the candidates; a service that has
    no such version is simply absent from the result (the caller reports it per item).
    """
    prefix = sha_or_prefix.strip().lower()
    rows = DeployableVersion.objects.filter(
        service__in=services, git_commit_sha__startswith=prefix
    ).select_related("service")
    # At most a few rows per service; more than that means the prefix is ambiguous anyway.
    candidates = list(rows.order_by("service__name", "-created_at")[: 10 * len(services) + 10])
    shas = sorted({v.git_commit_sha for v in candidates})
    if len(shas) > 1:
        listed = ", ".join(f"{sha[:12]}" for sha in shas[:10])
        raise VersionLookupError(
            f"'{prefix}' matches {len(shas)} commits ({listed}); type more of the sha."
        )
    return {v.service_id: v for v in candidates}


def latest_on_branch(services: list[Service], branch: str) -> dict[int, DeployableVersion]:
    """The newest version on the branch, per service (by pk); one query per service."""
    found = {}
    for service in services:
        version = DeployableVersion.objects.filter(service=service, branch=branch).first()
        if version is not None:
            found[service.pk] = version
    return found


def groups_of(services: list[Service], environments: list[Environment]) -> QuerySet[Group]:
    return Group.objects.filter(service__in=services, environment__in=environments).select_related(
        "service", "environment"
    )


def running_deployment(
    service: Service, environment: Environment, group: Group | None
) -> Deployment | None:
    """The deployment in progress for this target, if any (at most one: a DB constraint)."""
    return (
        Deployment.objects.in_progress()
        .filter(service=service, environment=environment, group_key=group.name if group else "")
        .first()
    )


def visible_deployments(
    user: User | AnonymousUser, *, seen: Visibility | None = None
) -> DeploymentQuerySet:
    """The deployments the user may view (permissions.rules, rule 6), with their relations.
    `seen` is the user's visibility when the caller has it already (once per request).

    SECURITY: every list and detail of deployments starts here; the filter is one condition
    per environment computed from the user's grants (three queries), never a check per row.
    """
    seen = seen if seen is not None else visibility(user)
    return Deployment.objects.with_related().filter(seen.q())


def latest_deployments(
    user: User | AnonymousUser, limit: int, *, seen: Visibility | None = None
) -> list[TableRow]:
    """The newest deployments the user may view, as a deployment table shows them."""
    return table_rows(visible_deployments(user, seen=seen)[:limit])


# -- one deployment -------------------------------------------------------------------------


def deployment_for_page(user: User | AnonymousUser, deployment_id: int) -> Deployment | None:
    """The deployment, or None when it does not exist or the user may not view it (a 404)."""
    return (
        visible_deployments(user)
        .select_related("source_version", "environment__cluster")
        .filter(pk=deployment_id)
        .first()
    )


def repository_url(deployment: Deployment) -> str:
    """Where the commits live: the version's repository, else the service's; no trailing .git."""
    url = deployment.version.repository_url or deployment.service.git_repository_url
    url = url.rstrip("/")
    return url.removesuffix(".git")


def commit_url(deployment: Deployment) -> str:
    if deployment.version.commit_url:
        return deployment.version.commit_url
    repository = repository_url(deployment)
    return f"{repository}/commit/{deployment.version.git_commit_sha}" if repository else ""


def compare_url(repository: str, old_sha: str, new_sha: str) -> str:
    """A GitHub-style compare link, or "" when there is nothing to compare."""
    if not repository or not old_sha or old_sha == new_sha:
        return ""
    return f"{repository}/compare/{old_sha}...{new_sha}"


# -- history --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilters:
    service: Service | None = None
    environment: Environment | None = None
    group: str = ""  # a group name (of any service and environment chosen)
    user_id: int | None = None
    status: str = ""
    since: date | None = None
    until: date | None = None
    text: str = ""


Cursor = tuple[datetime, int]


MAX_ID = 2**63 - 1  # a larger id cannot exist; the query would match nothing


def parse_cursor(raw: str) -> Cursor | None:
    """Parse an ``<iso created_at>_<id>`` keyset cursor; a malformed one starts over."""
    stamp, _, pk = raw.rpartition("_")
    try:
        # parse_datetime raises ValueError on a well-formed but impossible date (Feb 30).
        when = parse_datetime(stamp) if stamp else None
    except ValueError:
        return None
    if when is None or not (pk.isascii() and pk.isdigit()) or int(pk) > MAX_ID:
        return None
    if timezone.is_naive(when):
        when = timezone.make_aware(when, timezone.get_current_timezone())
    return when, int(pk)


def format_cursor(deployment: Deployment | TableRow) -> str:
    if isinstance(deployment, Deployment):
        return f"{deployment.created_at.isoformat()}_{deployment.pk}"
    return f"{deployment['created_at'].isoformat()}_{deployment['pk']}"


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


DENSE = 4000  # matches from which a search walks the newest-first index instead
PROBE = 100  # the newest deployments a search on PostgreSQL tests first (_pg_text_condition)
# The newest matches of a search a first page reads first (PostgreSQL, history_page): a page
# of 50 and the row that tells another follows, with room for a few the page leaves out.
FIRST_PAGE_MATCHES = 60


def _text_condition(text: str, using: str) -> tuple[Q, bool, Q | None]:
    """The deployment's message, the commit's message and branch (words, through the full-text
    index of history.text_search), who deployed it (part of a user name) and a sha prefix.

    Two plans, chosen by a count of the matches that stops at DENSE: few matches are read
    from each one's index, united, then sorted (a word found once in 100,000 deployments must
    not walk them all: 22 -> 0.6 ms); many are found by walking the newest-first index, where a
    page fills after a few rows, testing each row (on SQLite by regular expression: reading the
    index's list of 100,000 matches first took 20 ms).

    Also whether the condition is SQLite's list of the matches' ids (few: the page sorts them),
    and (PostgreSQL, a rare word with more than FIRST_PAGE_MATCHES matches) the condition of
    the newest FIRST_PAGE_MATCHES of them alone.
    """
    connection = connections[using]
    vendor = connection.vendor
    sha_prefix = len(text) >= MIN_PREFIX and bool(HEX_RE.match(text.lower()))
    if vendor == "postgresql":
        condition, newest = _pg_text_condition(text, using)
        return condition, False, newest
    # The messages counted on their own index as a stream (SQLite): in a union, the index's
    # whole list of matches would be read first, however common the word.
    if vendor == "sqlite" and messages_found(text, connection, up_to=DENSE) < DENSE:
        # Fewer than DENSE messages: every match's id, read once (the union stops at DENSE)
        # and given to the page as one JSON array. Read as a count, then again as the page's
        # subquery, the union was compiled and read twice.
        count, ids = matching_ids(text, connection, sha_prefix=sha_prefix, up_to=DENSE)
        if count < DENSE:
            return Q(AmongIds(ids)), True, None
    per_row = matching_deployments(text, vendor, per_row=True)
    return reduce(operator.or_, per_row + _other_matches(text, sha_prefix=sha_prefix)), False, None


def _other_matches(text: str, *, sha_prefix: bool) -> list[Q]:
    """Who deployed it (part of a user name) and, with `sha_prefix`, its commit's sha prefix
    (history.text_search.matching_ids reads the same on SQLite)."""
    others = [Q(deployed_by_id__in=User.objects.filter(username__icontains=text).values("pk"))]
    if sha_prefix:
        shas = DeployableVersion.objects.filter(git_commit_sha__startswith=text.lower())
        others.append(Q(version_id__in=shas.values("pk")))
    return others


def _pg_text_condition(text: str, using: str) -> tuple[Q, Q | None]:
    """PostgreSQL: the ids of the matches, read from each one's index (UNION ALL: it stops at
    DENSE rows, where a UNION would first read and deduplicate every match), then the page
    reads those rows by primary key. The ids are given as a list (one array: AmongIds), not
    as a subquery: the planner cannot estimate how many rows a prefix search matches (a fixed
    2 % of the table without statistics on at least 100 words), and from 2,000 it read the
    whole table in a hash join rather than fetch the few matches (14-35 ms for a word in 200
    of 100,000 deployments; by id: under 1 ms). From DENSE matches, the newest-first walk
    tests each row.

    A common word is recognised first, on the newest PROBE deployments tested row by row (the
    count stops at a quarter of them; 100 rather than 200 rows took the probe's statement
    0.4-0.8 ms less, 2026-12): when a quarter of them match, the walk fills a page within a few
    hundred rows, whereas reading the index's matches builds its bitmap of every match first (11
    ms for a word in every message at 100,000 deployments). The probe only picks the plan: both give
    the same rows.

    The probe and the ids are one fixed statement (history.text_search.pg_matching_ids): the
    ids are read only when the probe finds the word rare, and come back as one array in text,
    given back as is.

    With the ids, those of the newest FIRST_PAGE_MATCHES matches (their condition is the second
    value; None when there are no more matches than that): a first page with no other filter
    is read from them (history_page), 60 rows by primary key, where every match's ids made
    PostgreSQL fetch each of them and sort them, or walk the newest-first index until a page
    of them was found (a commit word's 1,050 matches at 100,000 deployments: 4,836 rows)."""
    connection = connections[using]
    sha_prefix = len(text) >= MIN_PREFIX and bool(HEX_RE.match(text.lower()))
    matches = pg_matching_ids(
        text,
        connection,
        sha_prefix=sha_prefix,
        probe=PROBE,
        up_to=DENSE,
        newest=FIRST_PAGE_MATCHES,
    )
    if matches.probed * 4 >= PROBE or matches.found >= DENSE:
        parts = matching_deployments(text, "postgresql") + _other_matches(
            text, sha_prefix=sha_prefix
        )
        return reduce(operator.or_, parts), None
    # As many newest as asked for: there may be older ones.
    more = matches.newest.count(",") + 1 >= FIRST_PAGE_MATCHES
    return Q(AmongIds(matches.ids)), Q(AmongIds(matches.newest)) if more else None


def filtered_history(
    filters: HistoryFilters, *, user: User | AnonymousUser, seen: Visibility | None = None
) -> DeploymentQuerySet:
    """Deployments the user may view matching the filters, newest first.

    Each single-column filter is served by its (column, -created_at) index, which also yields
    the newest-first order, so a page stops after PAGE_SIZE rows instead of sorting the table.
    """
    return _filtered_history(filters, user=user, seen=seen)[0]


def _filtered_history(
    filters: HistoryFilters, *, user: User | AnonymousUser, seen: Visibility | None
) -> tuple[DeploymentQuerySet, bool, DeploymentQuerySet | None]:
    """filtered_history, whether its search is SQLite's list of the matches' ids, and
    (PostgreSQL) the same rows among the newest FIRST_PAGE_MATCHES matches of a rare word only,
    when nothing else narrows them: the search is the only filter and the reader may view
    every service in every environment, so that only a deployment whose service or environment
    was deleted may be left out."""
    seen = seen if seen is not None else visibility(user)
    rows = visible_deployments(user, seen=seen)
    by_ids = False
    newest = None
    if filters.service is not None:
        rows = rows.filter(service=filters.service)
    if filters.environment is not None:
        rows = rows.filter(environment=filters.environment)
    if filters.group:
        rows = rows.filter(group_key=filters.group)
    if filters.user_id is not None:
        rows = rows.filter(deployed_by_id=filters.user_id)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.since is not None:
        rows = rows.filter(created_at__gte=_day_start(filters.since))
    if filters.until is not None:  # the whole day "until" is included
        rows = rows.filter(created_at__lt=_day_start(filters.until + timedelta(days=1)))
    if filters.text:
        condition, by_ids, among_newest = _text_condition(filters.text, rows.db)
        alone = filters == HistoryFilters(text=filters.text)
        if among_newest is not None and alone and (seen.everything or seen.all_pairs):
            newest = rows.filter(among_newest).order_by("-created_at", "-id")
        rows = rows.filter(condition)
    return rows.order_by("-created_at", "-id"), by_ids, newest


def history_page(
    filters: HistoryFilters,
    cursor: Cursor | None,
    size: int,
    *,
    user: User | AnonymousUser,
    seen: Visibility | None = None,
    names: KnownNames | None = None,
) -> tuple[list[TableRow], str]:
    """One page of history after the cursor, and the cursor of the next page ("" at the end).
    `names`: the services' and environments' names the request has read (table_rows).

    Keyset pagination on (created_at, id): the cost of a page does not grow with how deep
    the reader has paged, unlike OFFSET.
    """
    rows, by_ids, newest = _filtered_history(filters, user=user, seen=seen)
    if cursor is None and newest is not None and size < FIRST_PAGE_MATCHES:
        # A rare word's first page, from its newest matches only (_pg_text_condition). Complete
        # when it holds a page and one row more: every other match is older than all of them.
        # Else (a deleted service's or environment's deployments among them), every match.
        page = table_rows(newest[: size + 1], names=names)
        if len(page) > size:
            page = page[:size]
            return page, format_cursor(page[-1])
    if cursor is not None:
        when, pk = cursor
        # "<= when, minus the ties at or after pk" rather than an OR: SQLite turns the
        # created_at bound into an index range, so a deep page starts where the cursor is.
        rows = rows.filter(created_at__lte=when).exclude(created_at=when, id__gte=pk)
    if by_ids:
        # SQLite, a search's few matches: the page's ids are sorted first (a subquery reading
        # the deployment table only), then only those rows are joined to their names. Joined
        # before the sort, every match was: a commit-message word in 1,050 deployments at
        # 100,000, page query 1.45 -> 0.78 ms. (A walk of the newest-first index instead was
        # up to 10x slower when the matches are few or old.)
        # SECURITY: the subquery holds every condition, the reader's visibility included.
        ids = rows.values("pk")[: size + 1]
        rows = Deployment.objects.using(rows.db).filter(pk__in=ids).order_by("-created_at", "-id")
    page = table_rows(rows[: size + 1], names=names)
    if len(page) <= size:
        return page, ""
    page = page[:size]
    return page, format_cursor(page[-1])


# -- comparing two deployments --------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotChange:
    key: str
    change: str  # "changed", "added", "removed"
    old_sha: str = ""
    new_sha: str = ""


@dataclass(frozen=True)
class Comparison:
    a: Deployment
    b: Deployment
    snapshot_changes: list[SnapshotChange]
    unchanged: int
    snapshots_missing: list[Deployment]
    manifests_diff: str
    compare_url: str
    same_service: bool
    notes: list[str] = field(default_factory=list)


def _snapshot_services(deployment: Deployment) -> dict[str, Any] | None:
    services = (deployment.environment_snapshot or {}).get("services")
    return services if isinstance(services, dict) else None


def snapshot_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[SnapshotChange], int]:
    """service[/group] → sha changed/added/removed between two snapshots, and how many kept."""
    changes, unchanged = [], 0
    for key in sorted(old.keys() | new.keys()):
        old_sha = str((old.get(key) or {}).get("sha", ""))
        new_sha = str((new.get(key) or {}).get("sha", ""))
        if key not in new:
            changes.append(SnapshotChange(key, "removed", old_sha=old_sha))
        elif key not in old:
            changes.append(SnapshotChange(key, "added", new_sha=new_sha))
        elif old_sha != new_sha:
            changes.append(SnapshotChange(key, "changed", old_sha, new_sha))
        else:
            unchanged += 1
    return changes, unchanged


def manifests_diff(a: Deployment, b: Deployment) -> str:
    lines = difflib.unified_diff(
        a.rendered_manifests.splitlines(keepends=True),
        b.rendered_manifests.splitlines(keepends=True),
        fromfile=f"deployment #{a.pk}",
        tofile=f"deployment #{b.pk}",
    )
    return "".join(lines)


def compare_deployments(a: Deployment, b: Deployment) -> Comparison:
    old, new = _snapshot_services(a), _snapshot_services(b)
    changes, unchanged = snapshot_changes(old or {}, new or {})
    same_service = a.service_id == b.service_id
    notes = []
    if a.environment_id != b.environment_id:
        notes.append(
            f"The deployments went to different environments ({a.environment.name}, "
            f"{b.environment.name}): the snapshot diff compares two environments."
        )
    link = ""
    if same_service:
        link = compare_url(repository_url(b), a.version.git_commit_sha, b.version.git_commit_sha)
    else:
        notes.append("Different services: there is no commit range to compare.")
    return Comparison(
        a=a,
        b=b,
        snapshot_changes=changes,
        unchanged=unchanged,
        snapshots_missing=[d for d, s in ((a, old), (b, new)) if s is None],
        manifests_diff=manifests_diff(a, b),
        compare_url=link,
        same_service=same_service,
        notes=notes,
    )


# -- one batch: the deployments of one Deploy request (one per group) ----------------------


def batch_deployments(batch: uuid.UUID, *, user: User | AnonymousUser) -> list[Deployment]:
    """The deployments of one batch the user may view, in the order the batch page lists them
    (may be empty: the page then answers 404)."""
    return list(
        visible_deployments(user)
        .filter(batch=batch)
        .order_by("environment__name", "service__name", "group_key", "id")
    )


def batch_state(user: User, deployments: list[Deployment]) -> dict[str, Any]:
    """What the batch page and its socket show: a row per deployment, with what this user may
    do to it (deployments.controls: enabled, disabled with the reason, or absent), and the
    count per status. One read of the user's grants per verb for every row; the gate's
    sentence only for a control shown disabled."""
    may_cancel = allowed_targets(user, Verb.CANCEL)
    may_deploy = allowed_targets(user, Verb.DEPLOY)
    holds = {
        verb for verb, pairs in ((Verb.CANCEL, may_cancel), (Verb.DEPLOY, may_deploy)) if pairs
    }
    decided = [(d, _target(d) in may_cancel, _target(d) in may_deploy) for d in deployments]

    def why(deployment: Deployment, verb: Verb) -> str:
        service, environment = deployment.service, deployment.environment
        return explain(user, verb, service=service, environment=environment).reason

    per_row, overall = batch_controls(decided, holds=holds, why=why)
    rows = [_batch_row(d, controls) for d, controls in zip(deployments, per_row, strict=True)]
    summary: dict[str, int] = {}
    for row in rows:
        summary[row["status"]] = summary.get(row["status"], 0) + 1
    return {
        "type": "batch.state",
        "rows": rows,
        "summary": dict(sorted(summary.items())),
        "cancel_all": _plain(overall["cancel_all"]),
        "revert_all": _plain(overall["revert_all"]),
        # Kept for scripts reading the JSON: whether "Cancel all" / "Revert all" would act.
        "any_cancel": overall["cancel_all"].allowed,
        "any_revert": overall["revert_all"].allowed,
    }


def _target(deployment: Deployment) -> tuple[int, int]:
    return (deployment.service_id, deployment.environment_id)


def _plain(control: Control) -> dict[str, Any]:
    """A control as JSON for the page's socket and polling (and the template alike)."""
    return {**asdict(control), "disabled": control.disabled}


def _batch_row(deployment: Deployment, controls: dict[str, Control]) -> dict[str, Any]:
    status = Status(deployment.status)
    return {
        "id": deployment.pk,
        "service": deployment.service.name,
        "environment": deployment.environment.name,
        "group": deployment.group.name if deployment.group else "",
        "sha": deployment.version.git_commit_sha,
        "status": deployment.status,
        "reason": deployment.status_reason,
        "finished": status.is_terminal,
        "cancel": _plain(controls["cancel"]),
        "revert": _plain(controls["revert"]),
        "can_cancel": controls["cancel"].allowed,
        # Reverting a finished deployment deploys the version before it: the deploy verb.
        "can_revert": controls["revert"].allowed,
        "url": reverse("deployment-detail", args=[deployment.pk]),
    }


# -- the Deploy page: what may be chosen, what runs, what a Deploy would change ------------


class Choice(NamedTuple):
    """An environment or service the user may view, and whether they may deploy there: when
    they may not, `reason` says why (the deciding grant, or that none matches). A tuple: the
    page makes one per service (1,000 frozen dataclasses took 0.65 ms to make, these 0.25)."""

    pk: int
    name: str
    deployable: bool
    reason: str = ""
    note: str = ""

    @property
    def key(self) -> str:
        """The id as the page writes it: a string renders without the localisation an int
        goes through in a template (3,000 times on the Deploy page at 1,000 services)."""
        return str(self.pk)


def deploy_choices(
    user: User, environments: list[Environment], service_rows: list[tuple[int, str, bool]]
) -> tuple[dict[int, Choice], dict[int, Choice]]:
    """The Deploy page's choices, by id: every visible environment and service, each marked
    deployable when the user may deploy at least one service there (or it somewhere).
    `service_rows`: the visible services as (id, name, deployed per group), in name order
    (DeployForm.offered_service_rows): at 1,000 services, making model instances was most of
    this function's time.

    Queries whatever the number of choices (none for a superuser): the user's deploy holdings,
    read once to decide where they may deploy and to explain the refusals in memory
    (permissions.rules), and the catalogue the request's visibility read."""
    if user.is_active and user.is_superuser:
        # Every choice is deployable: no need to spell out services x environments (20,000
        # pairs at 1,000 x 20, most of this function's 7 ms).
        environment_ids = {e.pk for e in environments}
        service_ids = {pk for pk, _, _ in service_rows}
        index = None
    else:
        index = HoldingIndex(holdings(verb=Verb.DEPLOY, user=user))
        # SECURITY: an inactive account may deploy nothing (rule 1), whatever its grants say.
        environment_ids, service_ids = _deploy_scopes(index) if user.is_active else (set(), set())
    who = user.get_username()

    def why(target: RuleTarget, fallback: str) -> str:
        assert index is not None
        decision = decide(index, target, who=who, verb=Verb.DEPLOY)
        return fallback if decision.allowed else decision.reason

    closed = environment_blockers(user, environments)
    env_choices = {}
    for e in environments:
        deployable = e.pk in environment_ids
        reason = ""
        if not deployable:
            reason = why(
                RuleTarget(None, "", e.pk, e.name, e.availability),
                f"{who} may not deploy any service in {e.name}",
            )
        notes = ["message required"] if e.require_deployment_message else []
        notes += closed.get(e.pk, [])
        env_choices[e.pk] = Choice(e.pk, e.name, deployable, reason, "; ".join(notes))
    service_choices = {}
    for pk, name, per_group in service_rows:
        deployable = pk in service_ids
        reason = (
            "" if deployable else why(RuleTarget(pk, name), f"{who} may not deploy {name} anywhere")
        )
        note = "deployed per group" if per_group else ""
        service_choices[pk] = Choice(pk, name, deployable, reason, note)
    return env_choices, service_choices


def _deploy_scopes(index: HoldingIndex) -> tuple[set[int], set[int]]:
    """The environments where the holdings allow deploying at least one service, and the
    services they allow deploying in at least one environment, as allowed_targets would say,
    from permissions.rules.allowed_scopes: whole environments and the other pairs, never every
    (service, environment) spelled out (20,000 at 1,000 x 20: allowed_targets was a third of
    the Deploy page's time for a user with a grant)."""
    # The rows the request's visibility read already (two queries and 1,000 ids fewer).
    services, environments = catalogue()
    partial, whole = allowed_scopes(index, services, environments)
    environment_ids = whole | {e for _, e in partial}
    service_ids = (set(services) if whole else set()) | {s for s, _ in partial}
    return environment_ids, service_ids


def environment_blockers(user: User, environments: list[Environment]) -> dict[int, list[str]]:
    """Per environment, the blockers that close it to every service right now, whatever the
    version: active, not scoped to a service or a group, unconditional (without exceptions)
    or a time window that is open now; each as "blocked by 'name' until HH:MM zone". One
    query. The full check (every kind, per target and version) is check_targets'."""
    now = timezone.now()
    found: dict[int, list[str]] = {}
    for blocker in _closing_blockers_of(user):
        try:
            config = blocker_config.parse(blocker.kind, blocker.config)
        except blocker_config.ConfigError:
            continue  # the check names it (a broken blocker blocks, with its reason)
        if isinstance(config, blocker_config.Unconditional):
            if config.except_services or config.except_environments:
                continue
            until = "until it is lifted"
        elif isinstance(config, blocker_config.TimeWindow) and in_window(config, now):
            until = f"until {config.end:%H:%M} {config.timezone}"
        else:
            continue
        for e in environments:
            if blocker.environment_id not in (None, e.pk):
                continue
            if blocker.availability not in ("", e.availability):
                continue
            found.setdefault(e.pk, []).append(f"blocked by '{blocker.name}' {until}")
    return found


@cache
def _closing_blockers() -> "QuerySet[Blocker]":
    """environment_blockers' query without the user's exemptions, built once per process; the
    exemptions are excluded as a subquery of blocker ids (an exclude across the many-to-many
    makes Django build a correlated EXISTS for the same rows: 0.9 ms a call, 0.6 now)."""
    return (
        Blocker.objects.filter(active=True, service__isnull=True, group_name="")
        .filter(kind__in=[Blocker.Kind.UNCONDITIONAL, Blocker.Kind.TIME_WINDOW])
        .order_by("name")
    )


def _closing_blockers_of(user: User) -> list[Blocker]:
    """_closing_blockers() without the user's exemptions, by _closing_blockers_sql with the
    user's id: Blocker instances holding the columns environment_blockers reads, the config
    decoded by its field as Django decodes it."""
    sql, params, hole, names = _closing_blockers_sql()
    return read_by_sql(
        sql, [user.pk if i == hole else value for i, value in enumerate(params)], names
    )


_CLOSING_FIELDS = ("id", "name", "kind", "config", "environment_id", "availability")


@cache
def _closing_blockers_sql() -> tuple[str, list[Any], int, list[str]]:
    """environment_blockers' query compiled by Django once per process, as
    permissions.selectors._every_verb_sql: (the SQL, its parameters, the position of the
    user's id among them, the columns' names in the model's order). Compiling it (the
    exemptions' subquery) was 0.6 ms of a developer's Deploy page under load.

    The user's id is located by compiling with a stand-in no user has (-1): should the query
    ever bind it otherwise than once, this fails on the first page rather than excluding
    another user's exemptions."""
    stand_in = -1
    exempt = Blocker.exempt_users.through.objects.filter(user_id=stand_in).values("blocker_id")
    fields = [f for f in Blocker._meta.concrete_fields if f.attname in _CLOSING_FIELDS]
    query = _closing_blockers().exclude(pk__in=exempt).values_list(*(f.name for f in fields))
    sql, params = query.query.sql_with_params()
    holes = [i for i, value in enumerate(params) if value == stand_in]
    if len(holes) != 1:
        raise RuntimeError("the closing blockers' query binds the user's id in an unexpected way")
    return sql, list(params), holes[0], [f.attname for f in fields]


RunningKey = tuple[int, int, str]  # service id, environment id, group name ("" for none)


def running_versions(
    services: list[Service], environments: list[Environment]
) -> dict[RunningKey, Deployment]:
    """What runs now in each (service, environment, group) of the lists: the last DONE
    deployment of each, with its version, in one query (a window function)."""
    service_ids = list(dict.fromkeys(s.pk for s in services))
    environment_ids = list(dict.fromkeys(e.pk for e in environments))
    if not service_ids or not environment_ids:
        return {}
    sql, before, after = _last_done_sql(len(environment_ids), len(service_ids))
    db = Deployment.objects.db
    with prepared_cursor(db) as cursor:
        cursor.execute(sql, [*before, *environment_ids, *service_ids, *after])
        rows = cursor.fetchall()
    running = {}
    for row in rows:
        *values, environment_name, rank = row
        if rank != 1:
            continue
        d, v = values[: len(_RUNNING_DEPLOYMENT)], values[len(_RUNNING_DEPLOYMENT) :]
        deployment = Deployment.from_db(db, _RUNNING_DEPLOYMENT, _converted(d, _RUNNING_DEPLOYMENT))
        deployment.version = DeployableVersion.from_db(
            db, _RUNNING_VERSION, _converted(v, _RUNNING_VERSION)
        )
        deployment.environment = Environment.from_db(
            db, ["id", "name"], (deployment.environment_id, environment_name)
        )
        running[(deployment.service_id, deployment.environment_id, deployment.group_key)] = (
            deployment
        )
    return running


# The columns running_versions reads, each model's in its fields' order (from_db takes them so
# when the others are deferred): the ones _last_done's only() named, with the keys.
_RUNNING_DEPLOYMENT = [
    f.attname
    for f in Deployment._meta.concrete_fields
    if f.attname in ("id", "service_id", "environment_id", "version_id", "group_key", "finished_at")
]
_RUNNING_VERSION = [
    f.attname
    for f in DeployableVersion._meta.concrete_fields
    if f.attname in ("id", "service_id", "git_commit_sha", "commit_message", "created_at")
]
_RUNNING_DATES = {"finished_at", "created_at"}


def _converted(
    values: "list[Any] | tuple[Any, ...]", names: list[str], dates: set[str] = _RUNNING_DATES
) -> list[Any]:
    """The dates of a row as Django gives them (USE_TZ): SQLite's naive UTC (or its stored
    text, should its declared type not be recognised) as an aware datetime in UTC, as Django's
    SQLite converter makes them; PostgreSQL's are aware already."""
    return [
        _aware(value) if name in dates else value for name, value in zip(names, values, strict=True)
    ]


def _aware(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


@lru_cache(maxsize=64)
def _last_done_sql(environments: int, services: int) -> tuple[str, list[Any], list[Any]]:
    """running_versions' SQL for this many environments and services, compiled by Django once
    per process and shape (as environments.board._ranked_sql): (the SQL, the parameters before
    the ids, those after them). Compiling the window, its joins and columns was the largest
    compilation left on the Deploy page with a choice (1.2 ms of a developer's, under load).

    The ids are located by compiling with stand-ins no id can be (negative numbers): should
    Django ever bind them otherwise than as one run, environments then services, this fails
    on the first page rather than binding the wrong values. In no order (the rows are keyed
    by their target): the model's default ORDER BY sorted them for nothing."""
    stand_ins = [-n for n in range(1, environments + services + 1)]
    columns = [
        *(Deployment._meta.get_field(name).name for name in _RUNNING_DEPLOYMENT),
        *(f"version__{DeployableVersion._meta.get_field(n).name}" for n in _RUNNING_VERSION),
    ]
    query = (
        _last_done()
        .filter(environment__in=stand_ins[:environments], service__in=stand_ins[environments:])
        .order_by()
        .values_list(*columns, "environment__name", "rank")
    )
    sql, bound = query.query.sql_with_params()
    return sql, *_around(list(bound), stand_ins, "running_versions'")


def _around(bound: list[Any], stand_ins: list[Any], query: str) -> tuple[list[Any], list[Any]]:
    """The parameters of a query compiled once with `stand_ins` in place of its values: those
    before the stand-ins and those after them. Should Django bind the stand-ins otherwise than
    as one run in their order, this fails on the first page rather than binding wrong values."""
    start = bound.index(stand_ins[0]) if stand_ins[0] in bound else -1
    end = start + len(stand_ins)
    if start < 0 or bound[start:end] != stand_ins or set(stand_ins) & set(bound[end:]):
        raise RuntimeError(f"{query} query binds its values in an unexpected order")
    return bound[:start], bound[end:]


@cache
def _last_done() -> "QuerySet[Deployment]":
    """running_versions' query without the chosen services and environments, built once per
    process and cloned with them (building the window, the joins and the columns was a third
    of running_versions' time on the Deploy page), as environments.board._ranked. The lists'
    filter lands in the same WHERE as the status, before the window ranks the rows."""
    order = [F(name[1:]).desc() for name in LAST_DONE_ORDER]
    rank = Window(
        RowNumber(),
        partition_by=[F("service_id"), F("environment_id"), F("group_key")],
        order_by=order,
    )
    return (
        Deployment.objects.filter(status=Status.DONE)
        .select_related("version", "environment")
        .only(
            "service_id",
            "environment_id",
            "group_key",
            "finished_at",
            "version__git_commit_sha",
            "version__commit_message",
            "version__created_at",
            "version__service_id",
            "environment__name",
        )
        .annotate(rank=rank)
    )


def marks_in_force(
    *, services: list[Service], environments: list[Environment], shas: list[str]
) -> list[BadVersion]:
    """The marks in force on these versions in these environments (rollbacks that stick,
    deployments.services.bad_versions), in one query: each with the columns the picker shows,
    its environment's name and its marker's username, in the environments' name order."""
    if not services or not environments or not shas:
        return []
    service_ids = list(dict.fromkeys(s.pk for s in services))
    environment_ids = list(dict.fromkeys(e.pk for e in environments))
    unique_shas = list(dict.fromkeys(shas))
    sql, before, after = _marks_sql(len(environment_ids), len(service_ids), len(unique_shas))
    values: list[Any] = [*before, *environment_ids, *service_ids, *unique_shas, *after]
    db = BadVersion.objects.db
    with prepared_cursor(db) as cursor:
        cursor.execute(sql, values)
        rows = cursor.fetchall()
    marks = []
    for *columns, environment_name, username in rows:
        mark = BadVersion.from_db(
            db, _MARK_COLUMNS, _converted(columns, _MARK_COLUMNS, {"marked_at"})
        )
        mark.environment = Environment.from_db(
            db, ["id", "name"], (mark.environment_id, environment_name)
        )
        mark.marked_by = (
            None
            if mark.marked_by_id is None
            else User.from_db(db, ["id", "username"], (mark.marked_by_id, username))
        )
        marks.append(mark)
    return marks


# The columns marks_in_force reads, in the model's order (from_db takes them so).
_MARK_COLUMNS = [
    f.attname
    for f in BadVersion._meta.concrete_fields
    if f.attname
    in ("id", "service_id", "environment_id", "sha", "reason", "marked_by_id", "marked_at")
]


@lru_cache(maxsize=64)
def _marks_sql(environments: int, services: int, shas: int) -> tuple[str, list[Any], list[Any]]:
    """marks_in_force's SQL for this many environments, services and shas, compiled by Django
    once per process and shape (as _last_done_sql): compiling its three lists, two joins and
    order was 0.9 ms of a developer's Deploy page with a choice, for a query that finds no
    row on most pages. The values are located by stand-ins no row can hold (negative ids,
    shas that are not hexadecimal), bound in the filters' order."""
    ids = [-n for n in range(1, environments + services + 1)]
    stand_ins: list[Any] = [*ids, *(f"stand-in {n}" for n in range(shas))]
    query = (
        BadVersion.objects.active()
        .filter(environment__in=ids[:environments])
        .filter(service__in=ids[environments:])
        .filter(sha__in=stand_ins[len(ids) :])
        .order_by("environment__name")
        .values_list(
            *(BadVersion._meta.get_field(n).name for n in _MARK_COLUMNS),
            "environment__name",
            "marked_by__username",
        )
    )
    sql, bound = query.query.sql_with_params()
    return sql, *_around(list(bound), stand_ins, "marks_in_force'")


@dataclass(frozen=True)
class VersionRow:
    version: DeployableVersion
    ci: list[tuple[str, str]]  # (context, state)
    runs_in: list[str]  # environment[/group] names where it runs now
    bad: list[BadVersion] = field(default_factory=list)  # marks in force in the environments


def version_picker(
    services: list[Service],
    environments: list[Environment],
    limit: int = RECENT_VERSIONS,
    *,
    running: "dict[RunningKey, Deployment] | None" = None,
) -> list[tuple[Service, list[VersionRow]]]:
    """The recent versions of each service, each with its CI statuses, where it runs now and
    where it is marked bad among the chosen environments: one query per service, plus three
    (two when the caller passes what runs, running_versions of the same lists)."""
    recent = recent_versions(services, limit)
    ids = [v.pk for _, versions in recent for v in versions]
    ci: dict[int, list[tuple[str, str]]] = {}
    for version_id, context, state in _ci_statuses(ids):
        ci.setdefault(version_id, []).append((context, state))
    runs_in: dict[int, list[str]] = {}
    for (_, _, group), d in sorted(
        (running_versions(services, environments) if running is None else running).items(),
        key=lambda kv: kv[1].environment.name,
    ):
        where = f"{d.environment.name}/{group}" if group else d.environment.name
        runs_in.setdefault(d.version_id, []).append(where)
    shas = [v.git_commit_sha for _, versions in recent for v in versions]
    bad: dict[tuple[int, str], list[BadVersion]] = {}
    for mark in marks_in_force(services=services, environments=environments, shas=shas):
        bad.setdefault((mark.service_id, mark.sha), []).append(mark)
    return [
        (
            service,
            [
                VersionRow(
                    v,
                    ci.get(v.pk, []),
                    runs_in.get(v.pk, []),
                    bad.get((service.pk, v.git_commit_sha), []),
                )
                for v in versions
            ],
        )
        for service, versions in recent
    ]


def _ci_statuses(version_ids: list[int]) -> list[tuple[int, str, str]]:
    """(version id, context, state) of the CI statuses of these versions, in the model's
    order, by _ci_sql's statement (none for no version, as Django's queryset)."""
    if not version_ids:
        return []
    sql, before, after = _ci_sql(len(version_ids))
    with prepared_cursor(CIStatus.objects.db) as cursor:
        cursor.execute(sql, [*before, *version_ids, *after])
        return list(cursor.fetchall())


@lru_cache(maxsize=64)
def _ci_sql(versions: int) -> tuple[str, list[Any], list[Any]]:
    """_ci_statuses' SQL for this many versions, compiled by Django once per process and count
    (as _recent_sql), with stand-ins no id can be (negative numbers). Its plan does not depend
    on the ids (the version's index), so PostgreSQL keeps it prepared."""
    stand_ins = [-n for n in range(1, versions + 1)]
    query = CIStatus.objects.filter(version_id__in=stand_ins).values_list(
        "version_id", "context", "state"
    )
    sql, bound = query.query.sql_with_params()
    return sql, *_around(list(bound), stand_ins, "version_picker's CI statuses")


@dataclass(frozen=True)
class Change:
    """From the running version to the chosen one: "same", "forward" (newer commits come in)
    or "back" (a roll back: newer commits go away); the registered versions in between."""

    direction: str
    count: int
    versions: list[DeployableVersion]


CHANGE_LISTED = 20


def change_between(running: DeployableVersion, chosen: DeployableVersion) -> Change:
    """The registered versions between two versions of one service (registration order): the
    ones a deploy brings in (forward) or takes away (back). Two queries."""
    if running.pk == chosen.pk:
        return Change("same", 0, [])
    forward = (chosen.created_at, chosen.pk) > (running.created_at, running.pk)
    low, high = (running, chosen) if forward else (chosen, running)
    after_low = Q(created_at__gt=low.created_at) | Q(created_at=low.created_at, pk__gt=low.pk)
    up_to_high = Q(created_at__lt=high.created_at) | Q(created_at=high.created_at, pk__lte=high.pk)
    rows = DeployableVersion.objects.filter(after_low, up_to_high, service_id=chosen.service_id)
    return Change(
        "forward" if forward else "back",
        rows.count(),
        list(rows.order_by("-created_at", "-id")[:CHANGE_LISTED]),
    )


@dataclass(frozen=True)
class TargetRow:
    """One target of the Deploy page's check: the verdict (a DeployOutcome kind, or
    "unchecked" before a version is chosen), what runs there now and what would change."""

    service: Service
    environment: Environment
    group: Group | None
    kind: str
    reason: str
    refusals: tuple[Any, ...]
    may_override: bool
    version: DeployableVersion | None
    running: DeployableVersion | None
    change: Change | None


def target_rows(
    verdicts: list[tuple[Any, DeployableVersion | None]],
    *,
    running: "dict[RunningKey, Deployment] | None" = None,
) -> list[TargetRow]:
    """verdicts: (DeployOutcome, chosen version) per target; adds what runs now and the
    change. One query for what runs (none when the caller passes it: running_versions of
    services and environments that include every target's), two per target whose version
    changes."""
    if running is None:
        services = list({o.service.pk: o.service for o, _ in verdicts}.values())
        environments = list({o.environment.pk: o.environment for o, _ in verdicts}.values())
        running = running_versions(services, environments)
    rows = []
    for outcome, version in verdicts:
        key = (
            outcome.service.pk,
            outcome.environment.pk,
            outcome.group.name if outcome.group else "",
        )
        now = running.get(key)
        current = now.version if now is not None else None
        change = change_between(current, version) if current and version else None
        rows.append(
            TargetRow(
                outcome.service,
                outcome.environment,
                outcome.group,
                outcome.kind,
                outcome.reason,
                tuple(outcome.refusals),
                outcome.may_override,
                version,
                current,
                change,
            )
        )
    return rows


def pair_refusals(
    user: User, services: list[Service], environments: list[Environment]
) -> dict[tuple[int, int], str]:
    """Before a version is chosen: the chosen (service, environment) pairs the user may not
    deploy, each with the reason. One query at most (the user's deploy holdings), whatever the
    number of pairs: only the chosen pairs are decided (permissions.rules), not every pair of
    the catalogue (allowed_targets spelled out 20,000 pairs at 1,000 services x 20
    environments to answer for two: a third of the Deploy page's time with a choice)."""
    if user.is_active and user.is_superuser:
        return {}  # rule 1: a superuser may deploy anything
    who = user.get_username()
    index = HoldingIndex(holdings(verb=Verb.DEPLOY, user=user)) if user.is_active else None
    refused = {}
    for e in environments:
        for s in services:
            target = RuleTarget(s.pk, s.name, e.pk, e.name, e.availability)
            if index is None:
                # SECURITY: rule 1, whatever the grants say (as permissions.services.explain).
                why = "account inactive"
                refused[(s.pk, e.pk)] = sentence(who, Verb.DEPLOY, target, allowed=False, why=why)
                continue
            decision = decide(index, target, who=who, verb=Verb.DEPLOY)
            if not decision.allowed:
                refused[(s.pk, e.pk)] = decision.reason
    return refused


def applied_manifests(
    service: Service, environment: Environment, group: Group | None
) -> Deployment | None:
    """The last DONE deployment of the target: what Apollo applied there last."""
    return (
        Deployment.objects.filter(service=service, environment=environment, group=group)
        .last_done()
        .select_related("version")
        .first()
    )
