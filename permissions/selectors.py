"""Reads for permissions: grant holdings, and what a user may act on, in constant queries.

``environments_for``/``services_for``/``allowed_targets`` answer "where may this user do this
verb" for whole lists (the deploy form, the API, the matrix) from one query of the user's
holdings plus one each for services and environments, then apply ``permissions.rules`` in
memory. Nothing here checks one row at a time against the database.

Semantics: a (service, environment) target is allowed when ``can(user, verb, service=s,
environment=e)`` is true. ``environments_for`` returns the environments in which the user may
do the verb to at least one service; ``services_for`` the services the user may do it to in
the given environment (or in at least one environment).
"""

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, cached_property
from itertools import repeat
from typing import Any, TypeVar

from django.contrib.auth.models import AnonymousUser, Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Value

from apollo_site.prepared_sql import prepared_cursor
from deployments.models import Service
from environments.models import Environment
from permissions.models import GrantGroupObjectPermission, GrantUserObjectPermission
from permissions.rules import (
    Decision,
    Holding,
    HoldingIndex,
    Target,
    allowed_pairs,
    allowed_scopes,
    allows,
    allows_somewhere,
    decide,
    sentence,
)
from permissions.verbs import IMPLIES_VIEW, Effect, Verb

Pair = tuple[int, int]
T = TypeVar("T")

# The reads a request shares between its questions (its visibility filter and the header's
# deploy check ask the same user's holdings, services and environments): set by
# permissions.middleware for one request only, so a grant revoked takes effect on the next
# request. None outside a request (commands, consumers, direct calls): nothing is shared.
_request_reads: ContextVar[dict[tuple[object, ...], Any] | None] = ContextVar(
    "apollo_permission_reads", default=None
)


@contextmanager
def reads_shared_for_one_request() -> Iterator[None]:
    token = _request_reads.set({})
    try:
        yield
    finally:
        _request_reads.reset(token)


def forget_shared_reads(**_signal: object) -> None:
    """Any write to the database during the request drops what it read (connected to every
    model's post_save, post_delete and m2m_changed in permissions.apps): a request that changes
    a grant, a group's members, a service or an environment and then asks again is answered
    from the database, never from what it read before its write."""
    reads = _request_reads.get()
    if reads:
        reads.clear()


def _read_once(key: tuple[object, ...], load: Callable[[], T]) -> T:
    """load() once per request (callers must not mutate what it returns); every time outside."""
    reads = _request_reads.get()
    if reads is None:
        return load()
    if key not in reads:
        reads[key] = load()
    result: T = reads[key]
    return result


_SCOPE_FIELDS = {
    "grant_id": F("content_object_id"),
    "effect": F("content_object__effect"),
    "service_id": F("content_object__service_id"),
    "service_name": F("content_object__service__name"),
    "environment_id": F("content_object__environment_id"),
    "environment_name": F("content_object__environment__name"),
    "availability": F("content_object__availability"),
}


def _verb_filter(verb: Verb) -> Q:
    # The codename alone is not unique across apps; pin it to Grant's content type.
    grant_type = Q(
        permission__content_type__app_label="permissions",
        permission__content_type__model="grant",
    )
    if verb != Verb.VIEW:
        return grant_type & Q(permission__codename=verb.value)
    # Rule 6: every other verb's ALLOW is a view ALLOW at its scope; only view's own DENY denies.
    implied = Q(
        permission__codename__in=[v.value for v in IMPLIES_VIEW],
        content_object__effect=Effect.ALLOW,
    )
    return grant_type & (Q(permission__codename=Verb.VIEW.value) | implied)


def _user_rows(verb: Verb, condition: Q) -> "QuerySet[Any]":
    return _user_rows_of(_verb_filter(verb) & condition, {})


def _group_rows(verb: Verb, condition: Q) -> "QuerySet[Any]":
    return _group_rows_of(_verb_filter(verb) & condition, {})


def _user_rows_of(condition: Q, extra: dict[str, F | Subquery]) -> "QuerySet[Any]":
    rows: QuerySet[Any] = (
        GrantUserObjectPermission.objects.filter(condition)
        .values(**{**_SCOPE_FIELDS, **extra})
        .annotate(
            holder_kind=Value("user"), holder_id=F("user_id"), holder_name=F("user__username")
        )
    )
    return rows


def _group_rows_of(condition: Q, extra: dict[str, F | Subquery]) -> "QuerySet[Any]":
    rows: QuerySet[Any] = (
        GrantGroupObjectPermission.objects.filter(condition)
        .values(**{**_SCOPE_FIELDS, **extra})
        .annotate(holder_kind=Value("group"), holder_id=F("group_id"), holder_name=F("group__name"))
    )
    return rows


@cache
def _holding_queries(verb: Verb) -> "tuple[QuerySet[Any], QuerySet[Any]]":
    """A verb's user and group holding queries without the holder's condition, built once per
    process and cloned by each call (as a generic view's `queryset`): building them (the verb's
    filter, ten joined columns) was half of a holdings() call, which every page pays through
    its visibility and the header (2.0 -> 0.9 ms CPU a call at the History bench's reader)."""
    return _user_rows(verb, Q()), _group_rows(verb, Q())


def target_scope_q(target: Target) -> Q:
    """The grants whose scope covers the target (rule 2 of permissions.rules), as a filter."""
    s, e = target.service_id, target.environment_id
    unscoped = {"content_object__availability": ""}
    scopes = Q(pk__in=[])  # matches nothing; each covering scope is OR-ed in
    if s is not None and e is not None:
        scopes |= Q(content_object__service_id=s, content_object__environment_id=e)
    if e is not None:
        scopes |= Q(content_object__service__isnull=True, content_object__environment_id=e)
    if s is not None:
        scopes |= Q(
            content_object__service_id=s, content_object__environment__isnull=True, **unscoped
        )
    if e is not None and target.availability:
        scopes |= Q(
            content_object__service__isnull=True,
            content_object__environment__isnull=True,
            content_object__availability=target.availability,
        )
    return scopes


def _covers(holding: Holding, target: Target) -> bool:
    """target_scope_q on a holding already read: its grant's scope covers the target."""
    s, e = target.service_id, target.environment_id
    service, environment = holding.service_id, holding.environment_id
    return (
        (s is not None and e is not None and service == s and environment == e)
        or (e is not None and service is None and environment == e)
        or (s is not None and service == s and environment is None and holding.availability == "")
        or (
            e is not None
            and bool(target.availability)
            and service is None
            and environment is None
            and holding.availability == target.availability
        )
    )


def holdings(
    *,
    verb: Verb,
    user: User | None = None,
    group: Group | None = None,
    target: Target | None = None,
) -> list[Holding]:
    """Holdings of a verb in one query: a user's own and their groups', a group's, or everyone's."""
    user_condition, group_condition = Q(), Q()
    if user is not None:
        user_condition, group_condition = Q(user=user), Q(group__user=user)
    if group is not None:
        user_condition, group_condition = Q(pk__in=[]), Q(group=group)
    if target is not None:
        scope = target_scope_q(target)
        user_condition, group_condition = user_condition & scope, group_condition & scope
    if user is not None and group is None and _request_reads.get() is not None:
        # In a request, a user's holdings of every verb are read once (the page's visibility
        # and the header's Deploy link read them anyway); a question about one target takes
        # those covering it from that read rather than a query of its own (three on a
        # developer's deployment page).
        every_verb = _read_once(("holdings", user.pk), lambda: _holdings_of_every_verb(user))
        of_verb = _of_verb(every_verb, Verb(verb))
        return of_verb if target is None else [h for h in of_verb if _covers(h, target)]
    user_rows, group_rows = _holding_queries(Verb(verb))
    rows = user_rows.filter(user_condition).union(group_rows.filter(group_condition), all=True)
    return [Holding(**row) for row in rows]


@cache
def _every_verb_queries() -> "tuple[QuerySet[Any], QuerySet[Any]]":
    """The user and group holding queries of every verb without the holder's condition, built
    once per process and cloned by each call, as _holding_queries: building them (ten joined
    columns each) was a third of the holdings' read, which every developer's page pays once.

    The scope's names and the grant type's content type are read by a subquery each, not by
    joining the services, environments and content types:
    PostgreSQL planned the seven-table join on every developer's page."""
    extra: dict[str, F | Subquery] = {
        "codename": F("permission__codename"),
        "service_name": _name_of(Service, "content_object__service_id"),
        "environment_name": _name_of(Environment, "content_object__environment_id"),
    }
    # The codename alone is not unique across apps; pin it to Grant's content type, its id by
    # a subquery (no join, and no id kept in the process: a test database is made again).
    grant_type = Q(
        permission__content_type_id=Subquery(
            ContentType.objects.filter(app_label="permissions", model="grant").values("pk")
        )
    )
    return _user_rows_of(grant_type, extra), _group_rows_of(grant_type, extra)


def _name_of(model: type[Service] | type[Environment], column: str) -> Subquery:
    return Subquery(model.objects.filter(pk=OuterRef(column)).order_by().values("name"))


@cache
def _every_verb_sql() -> tuple[str, tuple[Any, ...], frozenset[int]]:
    """_holdings_of_every_verb's SQL, compiled by Django once per process: (the SQL, its
    parameters, the positions of the user's id among them). Compiling the union (its joins and
    subqueries) took 0.66 of the 1.08 ms this read cost every developer's page.

    The user's id is located by compiling with a stand-in no user has (-1): should the query
    ever bind it otherwise than twice (the user's own grants, their groups'), this fails on the
    first read rather than read someone else's."""
    user_rows, group_rows = _every_verb_queries()
    stand_in = -1
    rows = user_rows.filter(user=stand_in).union(group_rows.filter(group__user=stand_in), all=True)
    sql, params = rows.query.sql_with_params()
    holes = frozenset(i for i, value in enumerate(params) if value == stand_in)
    if len(holes) != 2:
        raise RuntimeError("the holdings' query binds the user's id in an unexpected way")
    return sql, tuple(params), holes


def _holdings_of_every_verb(user: User) -> list[tuple[str, Holding]]:
    """A user's holdings of every verb, with the verb's codename, in one query: a request asks
    for several verbs (view for its filter, deploy for the header) and _of_verb picks each.
    The query is _every_verb_sql's, with this user's id; its columns are the rows' keys.

    PostgreSQL keeps it prepared (apollo_site.prepared_sql): its plan is the same for every
    user, and planning the union of its joins and subqueries took 0.57-0.79 ms where running it
    took 0.08; prepared, the read took 0.23 ms rather than 0.94 (medians, 2026-12)."""
    sql, params, holes = _every_verb_sql()
    bound = [user.pk if i in holes else value for i, value in enumerate(params)]
    with prepared_cursor(GrantUserObjectPermission.objects.db) as cursor:
        cursor.execute(sql, bound)
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return [(row.pop("codename"), Holding(**row)) for row in rows]


def _of_verb(every_verb: list[tuple[str, Holding]], verb: Verb) -> list[Holding]:
    """The rows _verb_filter(verb) would have read (rule 6 for view)."""
    if verb != Verb.VIEW:
        return [h for codename, h in every_verb if codename == verb.value]
    implied = {v.value for v in IMPLIES_VIEW}
    return [
        h
        for codename, h in every_verb
        if codename == Verb.VIEW.value or (codename in implied and h.effect == Effect.ALLOW)
    ]


def _is_refused_outright(user: User | AnonymousUser) -> bool:
    return not (user.is_authenticated and user.is_active)


def _index_and_rows(
    user: User, verb: Verb
) -> tuple[HoldingIndex, list[int], list[tuple[int, str]]]:
    return HoldingIndex(holdings(verb=verb, user=user)), _service_ids(), _environment_rows()


# The shared reads of the catalogue: every service's id, every environment's (id, availability,
# name). Filled by their readers below, or by share_catalogue.
_SERVICES, _ENVIRONMENTS = ("services",), ("environments",)


# The catalogue in no particular order (.order_by()): the rules treat it as sets, and sorting
# 1,000 services by name through their name index took PostgreSQL 0.58 ms where the table's
# scan takes 0.11 (plan and execution), on every developer's page.
def _service_ids() -> list[int]:
    reads = _request_reads.get()
    rows = reads.get(_SERVICE_ROWS) if reads else None
    if rows is not None:
        return _read_once(_SERVICES, lambda: [pk for pk, _, _ in rows])
    return _read_once(_SERVICES, lambda: [pk for (pk,) in _read_fixed("service ids")])


_SERVICE_ROWS = ("service rows",)


def service_rows() -> list[tuple[int, str, bool]]:
    """Every service's (id, name, deployed per group) in name order, read once per request
    (callers must not mutate them). A page that lists every service (the Deploy page) reads
    them before it asks what the user may view: the catalogue then takes its ids from these
    rows instead of reading them again (one query and 1,000 rows fewer)."""
    return _read_once(_SERVICE_ROWS, _read_service_rows)


def _read_service_rows() -> list[tuple[int, str, bool]]:
    # SQLite gives the flag as 0 or 1: made a bool as Django's converter makes it.
    return [(pk, name, bool(per_group)) for pk, name, per_group in _read_fixed("service rows")]


# The catalogue's reads: statements with no parameter, compiled by Django once per process and
# database (_fixed_sql) and read without its row iterator (_read_fixed).
_FIXED_READS: dict[str, Callable[[], "QuerySet[Any]"]] = {
    "service rows": lambda: Service.objects.order_by("name").values_list(
        "pk", "name", "deployed_per_group"
    ),
    "service ids": lambda: Service.objects.order_by().values_list("pk"),
    "environment catalogue": lambda: Environment.objects.order_by().values_list(
        "pk", "availability", "name"
    ),
}


def _read_fixed(name: str) -> list[tuple[Any, ...]]:
    """The rows of _FIXED_READS[name] (ids, names, availabilities: no column Django converts but
    a flag, which the caller makes a bool), by its statement compiled once and read from the
    cursor. At 1,000 services the service rows' queryset, compiled and read through Django's
    row iterator and converters on every page, took 1.37 ms, this 0.80; the Deploy page
    0.94-0.96x as long on SQLite, 0.95-1.0x on PostgreSQL (the board bench's data, A/B in one
    process, 2026-12).

    Kept prepared on PostgreSQL (apollo_site.prepared_sql): no parameter, so one plan serves
    every page."""
    using = Service.objects.db
    sql = _fixed_sql(using, connections[using].vendor, name)
    with prepared_cursor(using) as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


@cache
def _fixed_sql(using: str, vendor: str, name: str) -> str:
    """_FIXED_READS[name]'s SQL as Django compiles it, for one database (its alias and vendor,
    the key of the cache)."""
    del vendor
    sql, params = _FIXED_READS[name]().using(using).query.sql_with_params()
    if params:
        raise RuntimeError(f"the {name} statement binds parameters: compile it with them")
    return sql


def _environment_rows() -> list[tuple[int, str]]:
    return [(pk, availability) for pk, availability, _ in _environment_catalogue()]


def _environment_catalogue() -> list[tuple[int, str, str]]:
    """Every environment's (id, availability, name): the names too, so that a page listing the
    environments a user may view needs no second read of them (viewable_environments)."""
    reads = _request_reads.get()
    rows = reads.get(_EVERY_ENVIRONMENT) if reads else None
    if rows is not None:
        return _read_once(_ENVIRONMENTS, lambda: [(e.pk, e.availability, e.name) for e in rows])
    return _read_once(
        _ENVIRONMENTS,
        lambda: [(pk, av, name) for pk, av, name in _read_fixed("environment catalogue")],
    )


_EVERY_ENVIRONMENT = ("every environment",)


def share_catalogue(service_ids: list[int], environments: list[tuple[int, str, str]]) -> None:
    """The catalogue a page read itself, with other rows in the same statement (History's
    filter form: history.selectors.read_catalogue), given to this request's shared reads
    before it asks what the user may view: the rules then decide over these rows and read
    neither table again. Outside a request, nothing is kept. What was read before stays.

    SECURITY: `service_ids` must be every service's id and `environments` every environment's
    (id, availability, name), read from the tables as they are now: the rules decide over
    them, and a row left out would be a service or an environment never allowed, or never
    refused."""
    reads = _request_reads.get()
    if reads is None:
        return
    reads.setdefault(_SERVICES, service_ids)
    reads.setdefault(_ENVIRONMENTS, environments)


def every_environment() -> list[Environment]:
    """Every environment, in name order, read once per request (callers must not mutate them).
    A page that lists the environments with all they say (the Deploy page) reads them before
    it asks what the user may view: the catalogue then takes its rows from these instead of
    reading them again (one query fewer)."""
    return _read_once(_EVERY_ENVIRONMENT, lambda: list(Environment.objects.order_by("name")))


def viewable_environments(seen: "Visibility") -> list[Environment] | None:
    """The environments of `seen` (a user's visibility) from the catalogue it was decided on,
    read once per request: no query of its own. Instances holding the id, name and
    availability only (as .only("name", "availability") reads them), in no order. None for a
    superuser's visibility, which reads no catalogue: the caller then queries them."""
    if seen.everything:
        return None
    fields = ["id", "name", "availability"]  # Environment.from_db takes them in model order
    return [
        Environment.from_db(Environment.objects.db, fields, (pk, name, availability))
        for pk, availability, name in _environment_catalogue()
        if pk in seen.environment_ids
    ]


def catalogue() -> tuple[list[int], list[tuple[int, str]]]:
    """Every service's id and every environment's (id, availability), as the rules decide
    over them: read once per request, shared with the request's visibility (callers must not
    mutate them)."""
    return _service_ids(), _environment_rows()


def allowed_targets(user: User | AnonymousUser, verb: Verb) -> set[Pair]:
    """Every (service_id, environment_id) where the user may do the verb; three queries."""
    verb = Verb(verb)
    if _is_refused_outright(user):
        return set()
    assert isinstance(user, User)
    if user.is_superuser:
        services = list(Service.objects.values_list("pk", flat=True))
        environment_ids = list(Environment.objects.values_list("pk", flat=True))
        return {(s, e) for s in services for e in environment_ids}
    index, services, environments = _index_and_rows(user, verb)
    return allowed_pairs(index, services, environments)[0]


def may_somewhere(user: User | AnonymousUser, verb: Verb) -> bool:
    """bool(allowed_targets(user, verb)) without spelling out the pairs (the header asks it on
    every page): one query of the holdings, and for who holds an ALLOW of the verb, one each for
    services and environments, decided until the first allowed pair."""
    verb = Verb(verb)
    if _is_refused_outright(user):
        return False
    assert isinstance(user, User)
    if user.is_superuser:
        return Service.objects.exists() and Environment.objects.exists()
    index_holdings = holdings(verb=verb, user=user)
    # A verb is allowed only where an ALLOW holding applies (rule 5): most readers hold none.
    if not any(h.effect == Effect.ALLOW for h in index_holdings):
        return False
    return allows_somewhere(HoldingIndex(index_holdings), _service_ids(), _environment_rows())


@dataclass(frozen=True)
class Visibility:
    """What a user may view (permissions.rules, rule 6): everything, or these pairs, plus the
    environments and services they may view on their own (an environment grant on an
    environment that runs no service yet still shows the environment)."""

    everything: bool
    environment_ids: frozenset[int] = frozenset()
    service_ids: frozenset[int] = frozenset()
    # Environments in which every service is visible (every one of whole_services): filtered
    # by environment alone, and their pairs not listed one by one (500 services x 50
    # environments are 25,000 pairs, most of a page's time to build for every request).
    whole_environments: frozenset[int] = frozenset()
    whole_services: frozenset[int] = frozenset()
    # The pairs outside whole_environments.
    partial_pairs: frozenset[Pair] = frozenset()
    # Every service in every environment (when asked): rows need no filter at all.
    all_pairs: bool = False

    @cached_property
    def pairs(self) -> frozenset[Pair]:
        """Every (service, environment) the user may view, spelled out (built when asked)."""
        pairs = set(self.partial_pairs)
        for e in self.whole_environments:
            pairs.update(zip(self.whole_services, repeat(e)))
        return frozenset(pairs)

    def sees(self, *, service_id: int | None, environment_id: int | None) -> bool:
        if self.everything:
            return True
        if service_id is None:
            return environment_id in self.environment_ids
        if environment_id is None:
            return service_id in self.service_ids
        if environment_id in self.whole_environments and service_id in self.whole_services:
            return True
        return (service_id, environment_id) in self.partial_pairs

    def services_in(self, environment_id: int) -> set[int]:
        """The services the user may view in the environment (not for `everything`)."""
        if environment_id in self.whole_environments:
            return set(self.whole_services)
        return {s for s, e in self.partial_pairs if e == environment_id}

    def q(self, *, service: str = "service_id", environment: str = "environment_id") -> Q:
        """A filter keeping the rows whose (service, environment) the user may view: one
        condition per environment, so its size follows the environments, not the rows."""
        if self.everything:
            return Q()
        if self.all_pairs:  # not Q(): an empty Q vanishes when OR-ed with another condition
            return Q(**{f"{environment}__isnull": False, f"{service}__isnull": False})
        by_environment: dict[int, list[int]] = defaultdict(list)
        for s, e in self.partial_pairs:
            by_environment[e].append(s)
        condition = Q(pk__in=[])  # matches nothing; each environment's services are OR-ed in
        if self.whole_environments:
            condition |= Q(
                **{
                    f"{environment}__in": sorted(self.whole_environments),
                    f"{service}__isnull": False,
                }
            )
        for e, services in sorted(by_environment.items()):
            condition |= Q(**{environment: e, f"{service}__in": sorted(services)})
        return condition


def visibility(user: User | AnonymousUser) -> Visibility:
    """What the user may view, in three queries (none but two for superusers). Decided once
    per request: a page asks it from its forms, its filters and its tables (a developer's
    Deploy page four times), and each answer walks every service and environment."""
    if _is_refused_outright(user):
        return Visibility(everything=False)
    assert isinstance(user, User)
    if user.is_superuser:
        return Visibility(everything=True)
    return _read_once(("visibility", user.pk), lambda: _visibility_of(user))


def _visibility_of(user: User) -> Visibility:
    index, services, environments = _index_and_rows(user, Verb.VIEW)
    partial, whole = allowed_scopes(index, services, environments)
    # The environments and services of the pairs, without a pass over every pair: a whole
    # environment holds every service.
    pair_services = {s for s, _ in partial} | (set(services) if whole else set())
    # Those viewable on their own, asked only where the pairs leave some out (a rule per service
    # and environment: ~0.5 ms a page at 500 services for a reader who sees them all anyway).
    alone_environments = {
        e
        for e, availability in environments
        if e not in whole and allows(index, Target(None, "", e, "", availability))
    }
    alone_services = set() if whole else {s for s in services if allows(index, Target(s))}
    return Visibility(
        everything=False,
        environment_ids=frozenset(whole | {e for _, e in partial} | alone_environments),
        service_ids=frozenset(pair_services | alone_services),
        whole_environments=frozenset(whole),
        whole_services=frozenset(services) if whole else frozenset(),
        partial_pairs=frozenset(partial),
        all_pairs=bool(services) and len(whole) == len(environments),
    )


def visible_service_names(user: User | AnonymousUser, environment: Environment) -> set[str] | None:
    """Names of the services the user may view in the environment; None means every name
    (superusers, who also see workloads that no Apollo service claims)."""
    seen = visibility(user)
    if seen.everything:
        return None
    ids = sorted(seen.services_in(environment.pk))
    return set(Service.objects.filter(pk__in=ids).values_list("name", flat=True))


def visible_environments(user: User | AnonymousUser) -> QuerySet[Environment]:
    seen = visibility(user)
    if seen.everything:
        return Environment.objects.all()
    return Environment.objects.filter(pk__in=seen.environment_ids)


def visible_services(user: User | AnonymousUser) -> QuerySet[Service]:
    seen = visibility(user)
    if seen.everything:
        return Service.objects.all()
    return Service.objects.filter(pk__in=seen.service_ids)


def environments_for(user: User | AnonymousUser, verb: Verb) -> QuerySet[Environment]:
    """Environments where the user may do the verb to at least one service."""
    if user.is_authenticated and user.is_active and user.is_superuser:
        return Environment.objects.all()
    ids = {e for _, e in allowed_targets(user, verb)}
    return Environment.objects.filter(pk__in=ids)


def services_for(
    user: User | AnonymousUser, verb: Verb, *, environment: Environment | None = None
) -> QuerySet[Service]:
    """Services the user may do the verb to in the environment (or in at least one)."""
    if user.is_authenticated and user.is_active and user.is_superuser:
        return Service.objects.all()
    pairs = allowed_targets(user, verb)
    ids = {s for s, e in pairs if environment is None or e == environment.pk}
    return Service.objects.filter(pk__in=ids)


@dataclass(frozen=True)
class Cell:
    allowed: bool
    label: str  # ALLOW, DENY, "superuser" or "" (no grant)
    reason: str


@dataclass(frozen=True)
class MatrixRow:
    label: str
    cells: list[Cell]


@dataclass(frozen=True)
class Matrix:
    verb: Verb
    columns: list[tuple[Service, Environment]]
    rows: list[MatrixRow]


def _cell(decision: Decision) -> Cell:
    holding = decision.deciding_grant
    label = holding.effect if holding is not None else ("superuser" if decision.allowed else "")
    return Cell(decision.allowed, label, decision.reason)


def _row(
    label: str, who: str, index: HoldingIndex | None, verb: Verb, targets: list[Target]
) -> MatrixRow:
    if index is None:  # a superuser
        cells = [
            Cell(True, "superuser", sentence(who, verb, t, allowed=True, why="superuser"))
            for t in targets
        ]
    else:
        cells = [_cell(decide(index, t, who=who, verb=verb)) for t in targets]
    return MatrixRow(label, cells)


def permission_matrix(
    *, verb: Verb, services: list[Service], environments: list[Environment]
) -> Matrix:
    """Every active user and every group against every (service, environment), in 4 queries."""
    columns = [(s, e) for e in environments for s in services]
    targets = [Target(s.pk, s.name, e.pk, e.name, e.availability) for s, e in columns]
    by_user: dict[int, list[Holding]] = defaultdict(list)
    by_group: dict[int, list[Holding]] = defaultdict(list)
    for h in holdings(verb=verb):
        (by_user if h.holder_kind == "user" else by_group)[h.holder_id].append(h)
    groups_of: dict[int, list[int]] = defaultdict(list)
    for user_id, group_id in User.groups.through.objects.values_list("user_id", "group_id"):
        groups_of[user_id].append(group_id)
    rows = []
    for user in User.objects.filter(is_active=True).order_by("username"):
        own = by_user[user.pk] + [h for g in groups_of[user.pk] for h in by_group[g]]
        index = None if user.is_superuser else HoldingIndex(own)
        rows.append(_row(f"user {user.username}", user.username, index, verb, targets))
    for group in Group.objects.order_by("name"):
        who = f"group {group.name}"
        rows.append(_row(who, who, HoldingIndex(by_group[group.pk]), verb, targets))
    return Matrix(verb, columns, rows)
