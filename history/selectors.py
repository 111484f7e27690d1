"""Reads for the History page's events: which a user may read, filtered and paged, and each
one's diff as rows to render.

Who reads an event (permissions.rules, rule 6): an event about a service in an environment, to
who may view that pair; about a service alone, to who may view it somewhere; about an
environment alone, to who may view something there; about neither (a cluster, a token, a user),
to superusers and `manage` holders only. One query for the page plus the user's grants.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import CharField, Q, QuerySet, Value
from django.utils import timezone

from apollo_site.prepared_sql import prepared_cursor
from deployments.models import Service
from deployments.phases import elapsed_text
from environments.models import Environment
from history.models import AuditEvent
from history.services import changes
from permissions.selectors import Visibility, allowed_targets, share_catalogue, visibility
from permissions.verbs import Verb

# The kinds of event the History page filters by: how each reads, and which actions it holds.
RESTARTS = ("pod.restarted", "service.restarted")
KINDS: dict[str, tuple[str, Q]] = {
    "service": ("services", Q(action__startswith="service.") & ~Q(action__in=RESTARTS)),
    "environment": ("environments", Q(action__startswith="environment.")),
    "cluster": ("clusters", Q(action__startswith="cluster.")),
    "group": ("groups", Q(action__startswith="group.") & ~Q(action="group.scaled")),
    "grant": ("grants", Q(action__startswith="grant.")),
    "blocker": ("blockers", Q(action__startswith="blocker.")),
    "shell": ("shell sessions", Q(action__startswith="shell.")),
    "restart": ("restarts", Q(action__in=RESTARTS)),
    "scaling": ("scaling", Q(action="group.scaled")),
    "version": ("versions", Q(action__startswith="version.")),
    "deployment": ("deployment requests", Q(action__startswith="deployment.")),
    "token": ("API tokens", Q(action__startswith="token.")),
    "user": ("users", Q(action__startswith="user.")),
}
ALL_EVENTS = "events"  # the kind filter's value for every kind of event


@dataclass(frozen=True)
class FilterOptions:
    services: list[tuple[str, int]]  # (name, id), by name
    environments: list[tuple[str, int]]  # (name, id), by name


@dataclass(frozen=True)
class Catalogue:
    """What the filter form reads first, in one statement (read_catalogue)."""

    services: list[tuple[int, str]]  # every service's (id, name), in no order
    environments: list[tuple[int, str, str]]  # every environment's (id, availability, name)
    user_id: int | None  # the user named, when one was asked for and exists


# Which list each row of read_catalogue's statement is for: a text constant, because an integer
# one (an IntegerField) is converted in Python row by row (550 rows: 0.5 ms on SQLite).
SERVICE, ENVIRONMENT, USER = "s", "e", "u"
# What the statement is compiled with, found again among its parameters and replaced:
# PostgreSQL refuses a NUL in a parameter, so no name compiled in can be sent.
_NAME_STAND_IN = "\x00name"


def read_catalogue(*, username: str | None, using: str = DEFAULT_DB_ALIAS) -> Catalogue:
    """Every service's (id, name), every environment's (id, availability, name) and the id of
    the user named, in one statement, before the page asks what its reader may view: the
    services' ids and the environments' rows are given to the request's permission reads
    (permissions.selectors.share_catalogue), which then decide over them instead of reading
    both tables again.

    One statement (UNION ALL) on every database: on PostgreSQL each statement is a round trip, a
    parse and a plan. As the visibility's two reads and then the options with the user (their
    names, among the ids the reader may view) they were three statements on a developer's
    History page; one now (#16). Its SQL is Django's, compiled once per process and shape
    (_catalogue_sql): compiled and read through Django's row iterators on every page, the 550
    options cost 1.1 ms of Python on PostgreSQL where executing the compiled statement and
    fetching its rows takes 0.24 (CPU, 2026-12).

    SECURITY: the rows are every service and environment (the rules decide over all of them);
    the options are narrowed to what the reader may view by filter_options."""
    connection = connections[using]
    sql, params, name_at = _catalogue_sql(using, connection.vendor, with_user=username is not None)
    bound = list(params)
    if name_at is not None:
        bound[name_at] = username
    # Kept prepared on PostgreSQL (apollo_site.prepared_sql): two tables read whole and a user
    # by its unique name, the same plan for every name.
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, bound)
        rows = cursor.fetchall()
    services, environments, users = [], [], []
    for part, pk, name, availability in rows:
        if part == SERVICE:
            services.append((pk, name))
        elif part == ENVIRONMENT:
            environments.append((pk, availability, name))
        else:
            users.append(pk)
    share_catalogue([pk for pk, _ in services], environments)
    return Catalogue(services, environments, users[0] if users else None)


def filter_options(
    catalogue: Catalogue,
    *,
    service_ids: Collection[int] | None,
    environment_ids: Collection[int] | None,
) -> FilterOptions:
    """The services' and environments' (name, id) pairs the reader may choose from (those of
    `service_ids` and `environment_ids`; None: every one), by name: by code point, as SQLite's
    BINARY collation and PostgreSQL's C collation sort (sorting the union by name took
    PostgreSQL 0.3 ms)."""
    services = sorted(
        (name, pk) for pk, name in catalogue.services if service_ids is None or pk in service_ids
    )
    environments = sorted(
        (name, pk)
        for pk, _, name in catalogue.environments
        if environment_ids is None or pk in environment_ids
    )
    return FilterOptions(services, environments)


@cache
def _catalogue_sql(
    using: str, vendor: str, *, with_user: bool
) -> tuple[str, tuple[Any, ...], int | None]:
    """read_catalogue's statement for one shape on one database (its alias and vendor, the key
    of the cache), compiled by Django: (the SQL, its parameters, the position of the user's
    name among them). The stand-in must be found exactly once, or this fails on the first
    read rather than bind the name where another parameter belongs."""
    no_availability = Value("", output_field=CharField())
    parts: list[Any] = [
        Service.objects.order_by()
        .annotate(part=Value(SERVICE), availability_=no_availability)
        .values_list("part", "pk", "name", "availability_"),
        Environment.objects.order_by()
        .annotate(part=Value(ENVIRONMENT))
        .values_list("part", "pk", "name", "availability"),
    ]
    if with_user:
        parts.append(
            User.objects.filter(username=_NAME_STAND_IN)
            .order_by()
            .annotate(part=Value(USER), availability_=no_availability)
            .values_list("part", "pk", "username", "availability_")
        )
    union = parts[0].union(*parts[1:], all=True)
    sql, params = union.query.get_compiler(using=using).as_sql()
    names_at = [i for i, value in enumerate(params) if value == _NAME_STAND_IN]
    if len(names_at) != with_user:
        raise RuntimeError("the catalogue's statement binds its stand-in unexpectedly")
    return sql, tuple(params), names_at[0] if names_at else None


def visible_events(
    user: User | AnonymousUser, *, seen: Visibility | None = None
) -> QuerySet[AuditEvent]:
    """The events the user may read (see the module docstring); `seen`: the user's visibility
    when the caller has it already."""
    seen = seen if seen is not None else visibility(user)
    if seen.everything:
        return AuditEvent.objects.all()
    condition = seen.q()  # both a service and an environment: the pair
    condition |= Q(environment__isnull=True, service_id__in=sorted(seen.service_ids))
    condition |= Q(service__isnull=True, environment_id__in=sorted(seen.environment_ids))
    if allowed_targets(user, Verb.MANAGE):
        condition |= Q(service__isnull=True, environment__isnull=True)
    return AuditEvent.objects.filter(condition)


@dataclass(frozen=True)
class EventFilters:
    kind: str = ALL_EVENTS  # a key of KINDS, or ALL_EVENTS
    service: Service | None = None
    environment: Environment | None = None
    actor_id: int | None = None
    since: date | None = None
    until: date | None = None
    text: str = ""


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def filtered_events(
    filters: EventFilters, *, user: User | AnonymousUser, seen: Visibility | None = None
) -> QuerySet[AuditEvent]:
    rows = visible_events(user, seen=seen)
    if filters.kind in KINDS:
        rows = rows.filter(KINDS[filters.kind][1])
    if filters.service is not None:
        rows = rows.filter(service=filters.service)
    if filters.environment is not None:
        rows = rows.filter(environment=filters.environment)
    if filters.actor_id is not None:
        rows = rows.filter(actor_id=filters.actor_id)
    if filters.since is not None:
        rows = rows.filter(created_at__gte=_day_start(filters.since))
    if filters.until is not None:
        rows = rows.filter(created_at__lt=_day_start(filters.until + timedelta(days=1)))
    if filters.text:
        rows = rows.filter(
            Q(summary__icontains=filters.text) | Q(actor__username__icontains=filters.text)
        )
    return rows.order_by("-created_at", "-id")


def events_page(
    filters: EventFilters,
    cursor: tuple[datetime, int] | None,
    size: int,
    *,
    user: User | AnonymousUser,
    seen: Visibility | None = None,
) -> tuple[list["EventView"], str]:
    """One keyset page of events after the cursor, and the next page's cursor ("" at the end)."""
    rows = filtered_events(filters, user=user, seen=seen)
    if cursor is not None:
        when, pk = cursor
        rows = rows.filter(created_at__lte=when).exclude(created_at=when, id__gte=pk)
    page = list(rows[: size + 1])
    next_cursor = ""
    if len(page) > size:
        page = page[:size]
        next_cursor = f"{page[-1].created_at.isoformat()}_{page[-1].pk}"
    return [event_view(e) for e in page], next_cursor


@dataclass(frozen=True)
class Row:
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class EventView:
    event: AuditEvent
    kind: str
    rows: list[Row] = field(default_factory=list)
    diffs: list[tuple[str, str]] = field(default_factory=list)  # (field, unified diff)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return str(value)


def _rows_of(data: dict[str, Any]) -> tuple[list[Row], list[tuple[str, str]]]:
    """The diff of any event's data, whichever service wrote it."""
    if isinstance(data.get("changes"), list):
        rows = [
            Row(str(c.get("field", "")), _text(c.get("before")), _text(c.get("after")))
            for c in data["changes"]
            if isinstance(c, dict) and not c.get("diff")
        ]
        diffs = data.get("diffs") or {}
        return rows, sorted((str(k), str(v)) for k, v in diffs.items())
    before, after = data.get("before", ...), data.get("after", ...)
    if before is not ... and after is not ...:
        if isinstance(before, dict | None) and isinstance(after, dict | None):
            computed = changes(before, after)
            return [Row(c["field"], c["before"], c["after"]) for c in computed["changes"]], []
        return [Row("value", _text(before), _text(after))], []
    pairs = {
        k: v for k, v in data.items() if isinstance(v, dict) and {"before", "after"} <= v.keys()
    }
    if pairs:
        return [Row(k, _text(v["before"]), _text(v["after"])) for k, v in sorted(pairs.items())], []
    return [Row(str(k), "", _text(v)) for k, v in sorted(data.items())], []


def kind_of(action: str) -> str:
    """The KINDS key of an action (the same partition as KINDS' conditions)."""
    if action in RESTARTS:
        return "restart"
    if action == "group.scaled":
        return "scaling"
    prefix = action.partition(".")[0]
    return prefix if prefix in KINDS else ""


def _duration(data: dict[str, Any]) -> Row | None:
    """How long a shell session lasted, from the times its closing event records."""
    try:
        started = datetime.fromisoformat(str(data["started_at"]))
        ended = datetime.fromisoformat(str(data["ended_at"]))
    except (KeyError, ValueError):
        return None
    return Row("duration", "", elapsed_text(max(0.0, (ended - started).total_seconds())))


def event_view(event: AuditEvent) -> EventView:
    data = event.data if isinstance(event.data, dict) else {}
    rows, diffs = _rows_of(data)
    duration = _duration(data) if event.action == "shell.closed" else None
    if duration is not None:
        rows = [duration, *rows]
    kind = kind_of(event.action)
    return EventView(event=event, kind=KINDS[kind][0] if kind else "", rows=rows, diffs=diffs)
