"""The status board: environments x services, each cell what runs there (Apollo's last DONE
deployment), its last deployment whatever its outcome, the live health and drift when a watch
of the environment has published them, and the blockers whose scope covers it.

A fixed number of queries, whatever the number of cells (`tests/environments/test_board.py`
counts them; `bench/board_bench.py` times 1,000 services x 20 environments): the user's
visibility, the environments, the services, one query of two window functions for the latest
deployment and the last DONE per (service, environment, group), one for the commits of what
runs, and the active blockers. The live part is
read from the watchers' shared state (this process or Redis), never from the cluster.

Ten thousand cells are too many for template tags (about a millisecond each): a cell is
rendered here, every value escaped, from plain rows (tuples, not model instances).
Measured again against a template-only {% for %} over per-cell values (the same HTML, 13:07 UTC,
bench/board_bench.py's data, CPU time): first page 61.2 ms (x118 the trivial view) vs 18.9 ms
(x36.6) here: kept.
"""

import html
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import cache, lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Case, CharField, F, Q, QuerySet, Value, When, Window
from django.db.models.functions import Coalesce, RowNumber
from django.template import Context
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

from apollo_site.prepared_sql import prepared_cursor
from deployments.models import DeployableVersion, Deployment, Group, Service
from deployments.status import Status
from deployments.templatetags.deployment_rows import row_url
from environments.live import watcher
from environments.models import Environment
from permissions import blocker_config
from permissions.blockers import in_window, read_by_sql
from permissions.models import Blocker
from permissions.selectors import Visibility, viewable_environments, visibility

Key = tuple[int, int, str]  # (service id, environment id, group key)
Obj = dict[str, Any]


class Cell(NamedTuple):
    """One deployment of a cell, as the board reads it (a tuple: no model instance, no dict)."""

    pk: int
    service_id: int
    environment_id: int
    group: str
    state: str
    version_id: int
    when: datetime | str  # finished, or created when it has not finished (_moment reads it)
    latest_rank: int
    done_rank: int

    @property
    def key(self) -> Key:
        return (self.service_id, self.environment_id, self.group)


# The columns of Cell, in its order.
CELL_COLUMNS = (
    "id",
    "service_id",
    "environment_id",
    "group_key",
    "status",
    "version_id",
    # As the database gives it (see _moment): SQLite's text was parsed by Django's converter,
    # row by row, at 8 % of the board's cells query.
    Coalesce("finished_at", "created_at", output_field=CharField()),
    "latest_rank",
    "done_rank",
)
IN_PROGRESS = set(Status.in_progress())
LABELS = dict(Status.choices)


# Services (rows, with their groups) per page: the cost of a page follows the cells it shows,
# not the catalogue (1,000 services x 20 environments would be 20,000 cells, seconds to render).
SERVICES_PER_PAGE = 20


@dataclass(frozen=True)
class BoardFilters:
    service: str = ""
    environment: str = ""
    group: str = ""
    after: str = ""  # the page starts after this service name (keyset on the name)


@dataclass
class Row:
    service: str
    group: str
    cells: list[str]  # markup, every value in it escaped by _cell
    url: str  # the service's page

    @property
    def key(self) -> str:
        return f"{self.service}/{self.group}" if self.group else self.service

    @property
    def html(self) -> str:
        """The row's markup, its cells joined once: written here rather than by a {% for %}
        in the template, whose lookups, tag and variables took 0.7 ms for 20 rows (a variable
        per cell would cost more than the cell). The spaces are the template's, as before."""
        # SECURITY: every value escaped here; the cells by _cell.
        group = f' <span class="group">/ {_e(self.group)}</span>' if self.group else ""
        return (
            f'\n  <tr data-key="{_e(self.key)}">\n    <th scope="row"><a href="{_e(self.url)}">'
            f"{_e(self.service)}</a>{group}</th>\n    {''.join(self.cells)}\n  </tr>\n  "
        )


@dataclass
class Board:
    environments: list[Environment]
    rows: list[Row]
    live_environments: list[str]  # those whose watch had a state to show
    next_after: str = ""  # the last service name of this page when another page follows

    @property
    def rows_html(self) -> SafeString:
        """Every row's markup, marked safe once (not once per row or cell)."""
        return mark_safe("".join(row.html for row in self.rows))  # noqa: S308 -- Row.html escapes


@cache
def _ranked() -> "QuerySet[Deployment, tuple[Any, ...]]":
    """The cells' query without the page's services and environments: two window functions
    per (service, environment, group), the latest deployment and the last DONE one. Built once
    per process and cloned with a page's filter by _ranked_sql, as permissions.selectors
    does its holdings' queries (building the windows was 6 % of the board)."""
    partition = [F("service_id"), F("environment_id"), F("group_key")]
    done_first = Case(When(status=Status.DONE, then=Value(0)), default=Value(1))
    return (
        Deployment.objects.annotate(
            latest_rank=Window(
                RowNumber(),
                partition_by=partition,
                order_by=[F("created_at").desc(), F("id").desc()],
            ),
            done_rank=Window(
                RowNumber(),
                partition_by=partition,
                order_by=[done_first.asc(), F("finished_at").desc(), F("id").desc()],
            ),
        )
        .filter(Q(latest_rank=1) | Q(done_rank=1))
        .order_by()
        .values_list(*CELL_COLUMNS)
    )


@lru_cache(maxsize=64)
def _ranked_sql(environments: int, services: int) -> tuple[str, list[Any], list[Any]]:
    """_ranked's SQL for a page of this many environments and services, compiled by Django
    once per process and shape: (the SQL, the parameters before the ids, those after them).
    Compiling it took 0.75 ms of every board (the query is the same but for the ids).

    The ids are located by compiling with stand-ins no id can be (negative numbers): should
    Django ever bind them otherwise than as one run, environments then services, this fails
    on the first board rather than binding the wrong values."""
    stand_ins = [-n for n in range(1, environments + services + 1)]
    query = _ranked().filter(
        environment__in=stand_ins[:environments], service__in=stand_ins[environments:]
    )
    sql, bound = query.query.sql_with_params()
    start = list(bound).index(stand_ins[0])
    end = start + len(stand_ins)
    if list(bound[start:end]) != stand_ins or set(stand_ins) & set(bound[end:]):
        raise RuntimeError("the board's cells query binds its ids in an unexpected order")
    return sql, list(bound[:start]), list(bound[end:])


def _moment(value: datetime | str) -> datetime:
    """A date of the cells' query: an aware datetime from PostgreSQL, SQLite's stored text
    (UTC, as Django writes it there when USE_TZ is on) otherwise. The offset is appended to
    the text rather than set by replace(tzinfo=), which took five times as long as parsing."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value + "+00:00")


def _deployments(
    environments: list[Environment], services: list[Service]
) -> tuple[dict[Key, Cell], dict[Key, Cell], dict[int, "Commit"]]:
    """Per (service, environment, group): the latest deployment and the last DONE one, in one
    query of two window functions over the page's rows (_ranked). Not a second query filtered
    on the status: SQLite would walk the status index, every DONE deployment of the table.

    Rows as tuples with one date each (finished, or created), in no order: converting the
    rows was most of this function's time (dicts, two dates a row, an outer ORDER BY). The
    SQL is _ranked_sql's, with this page's ids."""
    if not (environments and services):
        return {}, {}, {}  # as Django's "IN ()": nothing to ask
    sql, before, after = _ranked_sql(len(environments), len(services))
    ids = [e.pk for e in environments] + [s.pk for s in services]
    with prepared_cursor(_ranked().db) as cursor:
        cursor.execute(sql, [*before, *ids, *after])
        rows = cursor.fetchall()
    latest: dict[Key, Cell] = {}
    done: dict[Key, Cell] = {}
    for row in map(Cell._make, rows):
        key = row.key
        if row.latest_rank == 1:
            latest[key] = row
        if row.done_rank == 1 and row.state == Status.DONE:
            # The date as the database gave it: _commit reads it (rebuilding the tuple with a
            # parsed date was 0.4 ms of a board on SQLite).
            done[key] = row
    return latest, done, _commits({row.version_id for row in done.values()})


@dataclass(frozen=True)
class Commit:
    """The version that runs in a cell, as its cells show it: escaped once for every cell it
    runs in (a version usually runs in several environments)."""

    sha: str
    short_sha: str
    message: str  # the first line, cut at 50 characters
    author: str  # " · author", or ""


@lru_cache(maxsize=64)
def _commits_sql(versions: int) -> tuple[str, list[Any], list[Any]]:
    """_commits' SQL for this many versions, compiled by Django once per process and count:
    (the SQL, the parameters before the ids, those after them), as _ranked_sql. Compiling it
    was about a third of the board's compilation left after _ranked_sql (0.38 ms of a
    developer's board under load).

    The ids are located by compiling with stand-ins no id can be (negative numbers): should
    Django ever bind them otherwise than as one run in this order, this fails on the first
    board rather than reading other versions."""
    stand_ins = [-n for n in range(1, versions + 1)]
    query = DeployableVersion.objects.filter(pk__in=stand_ins).values_list(
        "pk", "git_commit_sha", "commit_message", "commit_author"
    )
    sql, bound = query.query.sql_with_params()
    start = list(bound).index(stand_ins[0])
    end = start + len(stand_ins)
    if list(bound[start:end]) != stand_ins or set(stand_ins) & set(bound[end:]):
        raise RuntimeError("the board's commits query binds its ids in an unexpected order")
    return sql, list(bound[:start]), list(bound[end:])


def _commits(version_ids: set[int]) -> dict[int, Commit]:
    """The commits of what runs, read after the ranking: joined inside the window query, every
    deployment of the page's cells would be joined to its version before being ranked. The
    SQL is _commits_sql's, with these ids; the columns are text (no conversion to apply)."""
    if not version_ids:
        return {}  # as Django's "IN ()": nothing to ask
    sql, before, after = _commits_sql(len(version_ids))
    with prepared_cursor(DeployableVersion.objects.db) as cursor:
        cursor.execute(sql, [*before, *sorted(version_ids), *after])
        rows = cursor.fetchall()
    commits = {}
    for pk, sha, message, author in rows:
        line = (message or "").split("\n", 1)[0]
        line = line if len(line) <= 50 else line[:49] + "…"
        # SECURITY: escaped here, once; the cells put these in their markup as they are.
        commits[pk] = Commit(
            sha=_e(sha),
            short_sha=_e(sha[:8]),
            message=_e(line),
            author=_e(f" · {author}") if author else "",
        )
    return commits


@dataclass(frozen=True)
class Mark:
    """A blocker as the board marks it: its scope, whether it is in force now, and when a time
    window that is closed now opens next ("" when it is in force or has no window)."""

    name: str
    service_id: int | None
    environment_id: int | None
    availability: str
    group: str
    in_force: bool
    starts: str = ""
    except_services: tuple[str, ...] = ()
    except_environments: tuple[str, ...] = ()


def _next_start(window: blocker_config.TimeWindow, now: datetime) -> str:
    """When the window opens next, on its own wall clock ("Fri 22:00 Europe/Berlin")."""
    local = now.astimezone(ZoneInfo(window.timezone))
    for days_ahead in range(8):
        day = local.date() + timedelta(days=days_ahead)
        opens = datetime.combine(day, window.start, tzinfo=local.tzinfo)
        if day.weekday() in window.days and opens > local:
            return f"{opens:%a %H:%M} {window.timezone}"
    return ""  # no day at all: the window never opens


def _mark(blocker: Blocker, now: datetime) -> Mark | None:
    """How a blocker marks the cells it covers; None for one that never blocks a cell."""
    scope = (blocker.service_id, blocker.environment_id, blocker.availability, blocker.group_name)
    try:
        config = blocker_config.parse(blocker.kind, blocker.config)
    except blocker_config.ConfigError:
        return Mark(blocker.name, *scope, in_force=True)  # a broken blocker blocks (fails closed)
    if isinstance(config, blocker_config.TimeWindow):
        if in_window(config, now):
            return Mark(blocker.name, *scope, in_force=True)
        starts = _next_start(config, now)
        return Mark(blocker.name, *scope, in_force=False, starts=starts) if starts else None
    if isinstance(config, blocker_config.Unconditional):
        return Mark(
            blocker.name,
            *scope,
            in_force=True,
            except_services=config.except_services,
            except_environments=config.except_environments,
        )
    # The other kinds depend on the version or on other deployments: in scope, in force.
    return Mark(blocker.name, *scope, in_force=True)


def _blockers(now: datetime) -> list[Mark]:
    return [mark for mark in (_mark(b, now) for b in _read_blockers()) if mark is not None]


def _read_blockers() -> list[Blocker]:
    """The active blockers, as _active_blockers() reads them, by its SQL compiled once per
    process (_active_blockers_sql): the instances hold the same columns, the config decoded by
    its field as Django decodes it."""
    sql, params, names = _active_blockers_sql()
    return read_by_sql(sql, params, names)


@cache
def _active_blockers_sql() -> tuple[str, list[Any], list[str]]:
    """_active_blockers()'s SQL, compiled by Django once per process (its parameters are
    constants): compiling it was the largest compilation left on every board (0.5 ms of a
    developer's under load). With its columns' names, in the model's order (from_db takes
    them so when the others are deferred)."""
    loaded = {"id", *_BLOCKER_FIELDS}
    names = [f.attname for f in Blocker._meta.concrete_fields if f.attname in loaded]
    columns = [f.name for f in Blocker._meta.concrete_fields if f.attname in loaded]
    sql, params = _active_blockers().values_list(*columns).query.sql_with_params()
    return sql, list(params), names


@cache
def _active_blockers() -> "QuerySet[Blocker]":
    """The active blockers' query, built once per process and cloned by each board (as
    _ranked): 0.29 -> 0.21 ms a board without blockers."""
    return Blocker.objects.filter(active=True).only(*_BLOCKER_FIELDS).order_by("name")


_BLOCKER_FIELDS = (
    "name",
    "kind",
    "config",
    "service_id",
    "environment_id",
    "availability",
    "group_name",
)


def _covers(mark: Mark, service: Service, environment: Environment, group: str) -> bool:
    """The scope test of permissions.blockers.blockers_in_scope (and an unconditional
    blocker's exceptions), on rows already read."""
    return (
        mark.service_id in (None, service.pk)
        and mark.environment_id in (None, environment.pk)
        and mark.availability in ("", environment.availability)
        and mark.group in ("", group)
        and service.name not in mark.except_services
        and environment.name not in mark.except_environments
    )


def _live_entries(environments: list[Environment]) -> dict[tuple[int, str, str], Obj]:
    entries: dict[tuple[int, str, str], Obj] = {}
    for environment_id, state in watcher.shared_states([e.pk for e in environments]).items():
        for entry in state.get("services", []):
            entries[(environment_id, entry["service"], entry["group"])] = entry
    return entries


def _visible(
    seen: Visibility, filters: BoardFilters
) -> tuple[QuerySet[Environment], QuerySet[Service]]:
    environments = Environment.objects.only("name", "availability").order_by("availability", "name")
    services = Service.objects.only("name").order_by("name")
    if not seen.everything:
        environments = environments.filter(pk__in=sorted(seen.environment_ids))
    # A user who may view every service of some environment may view every service (as
    # history.forms): then the page's read of services binds no list of every service's id (at
    # 1,000 services, compiling that list was 7 % of a developer's board).
    if not (seen.everything or seen.whole_environments):
        services = services.filter(pk__in=sorted(seen.service_ids))
    if filters.environment:
        environments = environments.filter(name=filters.environment)
    if filters.service:
        services = services.filter(name=filters.service)
    return environments, services


def _in_column_order(environments: list[Environment]) -> list[Environment]:
    """The board's columns: by availability, then name (_visible's order, in Python's)."""
    return sorted(environments, key=lambda e: (e.availability, e.name))


@dataclass(frozen=True)
class BoardChoices:
    """What the filters accept: the environments and groups they list, and the services (a
    search box: a name is checked, the list is not read)."""

    environments: list[str]
    groups: list[str]
    services: QuerySet[Service]
    environment_rows: list[Environment]  # the environments' rows, for status_board to reuse

    def has_service(self, name: str) -> bool:
        return self.services.filter(name=name).exists()


def filter_choices(seen: Visibility) -> BoardChoices:
    """The names the filters accept: environments, services and groups the user may view."""
    environments, services = _visible(seen, BoardFilters())
    # The groups of the services and environments the user may view (the groups' own table,
    # not a scan of every deployment).
    groups = Group.objects.filter(seen.q()).order_by().values_list("name", flat=True).distinct()
    # A user's environments from the catalogue their visibility read (one query less a page);
    # a superuser's read here. Sorted here for both, so the columns' order is the same.
    rows = viewable_environments(seen)
    rows = _in_column_order(list(environments) if rows is None else rows)
    return BoardChoices(
        environments=[e.name for e in rows],
        groups=sorted(set(groups)),
        services=services,
        environment_rows=rows,
    )


@dataclass
class _Page:
    """What every cell of one render shares: the data read once and the URLs reversed once."""

    seen: Visibility
    latest: dict[Key, Cell]
    done: dict[Key, Cell]
    commits: dict[int, Commit]
    blockers: list[Mark]
    live: dict[tuple[int, str, str], Obj]
    environment_urls: dict[int, str]  # escaped, as every name below
    environment_names: dict[int, str]
    deployment_url: str  # with {} for the id
    now: datetime
    zone: tzinfo


def status_board(
    user: User | AnonymousUser,
    filters: BoardFilters,
    seen: Visibility | None = None,
    choices: BoardChoices | None = None,
) -> Board:
    """The board for this user: only the environments and services they may view, and in a
    cell only a pair they may view (rule 6 of permissions.rules). `choices`: filter_choices of
    the same visibility, whose environments are then not read again."""
    seen = seen or visibility(user)
    environment_rows, service_rows = _visible(seen, filters)
    if filters.after:
        service_rows = service_rows.filter(name__gt=filters.after)
    if choices is None:
        environments = _in_column_order(list(environment_rows))
    else:
        wanted = filters.environment
        environments = [e for e in choices.environment_rows if not wanted or e.name == wanted]
    services = list(service_rows[: SERVICES_PER_PAGE + 1])
    next_after = ""
    if len(services) > SERVICES_PER_PAGE:
        services = services[:SERVICES_PER_PAGE]
        next_after = services[-1].name
    latest, done, commits = _deployments(environments, services)
    live = _live_entries(environments)
    now = timezone.now()
    page = _Page(
        seen=seen,
        latest=latest,
        done=done,
        commits=commits,
        blockers=_blockers(now),
        live=live,
        environment_urls=_environment_urls(environments),
        environment_names={e.pk: _e(e.name) for e in environments},
        deployment_url=reverse("deployment-detail", args=[1]).replace("/1/", "/{}/"),
        now=now,
        zone=timezone.get_current_timezone(),
    )
    groups: dict[int, set[str]] = {s.pk: set() for s in services}
    for service_id, _, group in latest:
        groups[service_id].add(group)
    rows = []
    urls = Context()  # row_url keeps the reversed pattern in its render context
    for service in services:
        url = row_url(urls, "service-detail", service.name)
        for group in sorted(groups[service.pk] or {""}):
            if filters.group and group != filters.group:
                continue
            key = f"{service.name}/{group}" if group else service.name
            names = (_e(key), _e(slugify(key)))  # escaped once per row, not once per cell
            cells = [
                _cell(page, service, environment, group, names) for environment in environments
            ]
            rows.append(Row(service=service.name, group=group, cells=cells, url=url))
    with_state = {environment_id for environment_id, _, _ in live}
    shown = [e.name for e in environments if e.pk in with_state]
    return Board(
        environments=environments, rows=rows, live_environments=shown, next_after=next_after
    )


def _environment_urls(environments: list[Environment]) -> dict[int, str]:
    """Each environment's page, escaped: the pattern reversed once for the page (row_url, as
    History's rows), not once per environment."""
    urls = Context()  # row_url keeps the reversed pattern in its render context
    return {e.pk: _e(row_url(urls, "environment-detail", e.name)) for e in environments}


HIDDEN = '<td class="cell hidden-cell"><span class="visually-hidden">hidden</span></td>'


def _health(last: Cell | None, live: Obj | None) -> str:
    """deploying / healthy / degraded (from the live watch) / failed / unknown."""
    if last is not None and last.state in IN_PROGRESS:
        return "deploying"
    if live is not None:
        return "healthy" if live.get("ready", 0) >= live.get("desired", 0) else "degraded"
    if last is not None and last.state == Status.FAILED:
        return "failed"
    return "unknown"


def _cell(
    page: _Page,
    service: Service,
    environment: Environment,
    group: str,
    labels: tuple[str, str],
) -> str:
    """The cell's markup (Board.rows_html marks the rows' cells safe at once).

    SECURITY: every value from the database or the cluster goes through _e (html.escape,
    quotes included), here or once per row or version (labels, Commit); the rest is this
    module's own markup."""
    # .id, not .pk: Model.pk is a property that looks the primary key's name up (800 calls).
    service_id, environment_id = service.id, environment.id
    if not page.seen.sees(service_id=service_id, environment_id=environment_id):
        return HIDDEN
    key = (service_id, environment_id, group)
    running, last = page.done.get(key), page.latest.get(key)
    live = page.live.get((environment_id, service.name, group))
    health = _health(last, live)
    row_key, slug = labels  # escaped already
    commit = page.commits[running.version_id] if running else None
    if commit:
        sha = f'<code class="sha" title="{commit.sha}">{commit.short_sha}</code>'
    else:
        sha = '<span class="muted sha">not deployed</span>'
    replicas = f" {int(live.get('ready', 0))}/{int(live.get('desired', 0))}" if live else ""
    parts = [
        f'<a class="cell-link" href="{page.environment_urls[environment_id]}#service-'
        f'{slug}" aria-label="{row_key} in {page.environment_names[environment_id]}">{sha}</a>'
        f' <span class="badge health" data-health="{health}">{health}{replicas}</span>'
    ]
    if live and live.get("drifted"):
        differences = "; ".join(str(d) for d in live.get("drift") or []) or "drifted"
        parts.append(f' <span class="badge drift" title="{_e(differences)}">drifted</span>')
    if page.blockers:
        marks = [m for m in page.blockers if _covers(m, service, environment, group)]
        parts.append(_blocker_badges(marks))
    if running and commit:
        parts.append(_commit(page, running, commit))
    if last is not None and (running is None or last.pk != running.pk):
        label = LABELS.get(last.state, last.state)
        url = page.deployment_url.format(int(last.pk))
        parts.append(
            f'<div class="cell-last">last: <a href="{_e(url)}">#{int(last.pk)} '
            f"{_e(label)}</a></div>"
        )
    return (
        f'<td class="cell health-{health}" data-env="{page.environment_names[environment_id]}" '
        f'data-key="{row_key}">{"".join(parts)}</td>'
    )


def _blocker_badges(marks: list[Mark]) -> str:
    """ "blocked" when a blocker in force covers the cell; a time window closed now is not in
    force and only says when it opens."""
    now_in_force = [m.name for m in marks if m.in_force]
    later = [f"{m.name} from {m.starts}" for m in marks if not m.in_force]
    badges = ""
    if now_in_force:
        names = _e(", ".join(now_in_force))
        badges += f' <span class="badge blocker" title="Blockers in scope: {names}">blocked</span>'
    if later:
        text = _e("; ".join(later))
        badges += f' <span class="badge blocker-later" title="Not in force now">{text}</span>'
    return badges


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _age(when: datetime, now: datetime) -> str:
    """The largest unit only ("3 hours"), as a glance at a board needs; the title has the time."""
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "moments"


def _commit(page: _Page, running: Cell, commit: Commit) -> str:
    when = _moment(running.when)
    iso = when.isoformat()
    local = when.astimezone(page.zone)
    # "%Y-%m-%d %H:%M %Z" without strftime, which took twice as long (0.76 vs 0.35 ms a board),
    # sliced from an isoformat(): the UTC one already made when the zone's offset is the same
    # (isoformat took 1.2 us, two a cell were a third of the cell's time).
    local_iso = iso if local.utcoffset() == when.utcoffset() else local.isoformat()
    stamp = f"{local_iso[:10]} {local_iso[11:16]} {local.tzname()}"
    return (
        f'<div class="cell-commit">{commit.message}{commit.author} · '
        f'<time datetime="{iso}" title="{stamp}">{_age(when, page.now)} ago</time>'
        "</div>"
    )
