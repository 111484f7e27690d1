"""The delivery metrics' own table (history.models.DeploymentOutcome), kept in step with the
deployments at read time: `sync_outcomes` runs before every computation.

Why a table, and why at read time (bench/metrics_bench.py, profiled at 100,000 deployments on
SQLite): computing the figures from the deployments themselves cost one correlated lookup per
deployment for "reverted" (a later DONE went back from this version) and another for "the next
DONE" (time to restore), plus date differences that SQLite evaluates in Python (Django's
functions): seconds per page, 23 s team-wide. Each deployment's figures are known once it has
ended, and what a later deployment changes (reverted, next DONE) is known when that one ends: so
they are written once, in integers, and the page only sums and sorts one narrow table. Doing it
at read time rather than in the worker sees every deployment, however it was written (the
worker, the demo's seeded history, a test's factories), with no hook in the engine.

A sync, in a constant number of statements: read the deployments the table has not seen (ids
above its highest, and any missing among the RECHECK ids below it) and those that had not ended
when last seen (few: one per target at most),
upsert them, then, if some ended, fill in what their ending tells: their own next DONE, the
earlier rows of their target whose next DONE they are, and the rows they revert. A large
catch-up (the first view after an upgrade) recomputes those two columns for every row instead.

Rows are snapshots: a deployment's figures are not re-read after it ended (a commit time
corrected later, a deployment deleted, do not change them).
"""

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Value

from deployments.models import Deployment
from deployments.status import Status
from history.models import DeploymentOutcome

Outcome = DeploymentOutcome.Outcome
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
# Above this many rows ending in one sync, recompute "next DONE" and "reverted" for every row
# (a few hundred thousand index lookups, once) instead of following each ending one.
FULL_RECOMPUTE = 500
# How far below the highest id seen a sync looks for deployments it has not seen (ids
# committed out of order); a thousand deployments created while one request's transaction is
# open is far beyond what Apollo sees.
RECHECK = 1000
# The advisory lock of a sync on PostgreSQL: "METR" (the engine's locks are "APOL", id).
LOCK_CLASS = 0x4D455452
FIELDS = (
    "pk",
    "service_id",
    "environment_id",
    "group_key",
    "version_id",
    "source_version_id",
    "status",
    "started_at",
    "finished_at",
    "version__committed_at",
)


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // MS


def _outcome(row: tuple[Any, ...], batch: int) -> DeploymentOutcome:
    pk, service, environment, group_key, version, source, status, started, finished, committed = row
    outcome = {
        Status.DONE: Outcome.DONE,
        Status.FAILED: Outcome.FAILED,
        Status.CANCELED: Outcome.ROLLED_BACK if started is not None else Outcome.NOT_RUN,
    }.get(status, Outcome.RUNNING)
    lead = None
    if outcome == Outcome.DONE and finished and committed and committed <= finished:
        lead = (finished - committed) // timedelta(seconds=1)
    return DeploymentOutcome(
        deployment_id=pk,
        service_id=service,
        environment_id=environment,
        group_key=group_key,
        version_id=version,
        source_version_id=source,
        final=outcome != Outcome.RUNNING,
        outcome=outcome,
        finished_ms=to_ms(finished) if finished is not None else None,
        lead_seconds=lead,
        batch=batch if outcome != Outcome.RUNNING else 0,
    )


def sync_outcomes() -> int:
    """Bring the table up to date with the deployments; returns how many rows ended now."""
    seen = DeploymentOutcome.objects.aggregate(last=Max("deployment_id"))["last"] or 0
    # New: above the highest id seen, and the last RECHECK ids below it that have no row
    # (on PostgreSQL ids are taken when a transaction inserts and seen when it commits, so a
    # deployment may commit after a higher id was seen).
    unseen = ~Exists(DeploymentOutcome.objects.filter(deployment_id=OuterRef("pk")))
    new = Deployment.objects.filter(unseen, pk__gt=seen - RECHECK)
    running = Deployment.objects.filter(
        pk__in=DeploymentOutcome.objects.filter(final=False).values("deployment_id")
    )
    # Two reads in one statement (an OR of the two would scan every deployment on SQLite).
    rows = list(
        new.order_by()
        .values_list(*FIELDS, Value(True))
        .union(running.order_by().values_list(*FIELDS, Value(False)), all=True)
    )
    if not rows:
        return 0
    batch = secrets.randbits(62) or 1
    outcomes = [(_outcome(row[:-1], batch), row[-1]) for row in rows]
    # A row seen running before and still running needs no write.
    changed = [o for o, is_new in outcomes if o.final or is_new]
    ended = [o for o in changed if o.final]
    changed.sort(key=lambda o: o.deployment_id)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Two views syncing at once write one after the other (their upserts and updates
            # would otherwise lock the same rows in different orders); SQLite's writes are
            # serial already (BEGIN IMMEDIATE).
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [LOCK_CLASS])
        DeploymentOutcome.objects.bulk_create(
            changed,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["deployment"],
            update_fields=[f.name for f in DeploymentOutcome._meta.concrete_fields[1:]],
        )
        if ended:
            _propagate(batch, full=len(ended) > FULL_RECOMPUTE)
    return len(ended)


TARGET = (
    "{a}.service_id = {b}.service_id AND {a}.environment_id = {b}.environment_id "
    "AND {a}.group_key = {b}.group_key"
)


def _propagate(batch: int, *, full: bool) -> None:
    """What the rows that ended in `batch` tell about themselves and the earlier rows."""
    # SECURITY: only the table's name (the model's) and fixed column names are put into the
    # statements below; every value is a parameter (S608 is silenced for that reason).
    table = connection.ops.quote_name(DeploymentOutcome._meta.db_table)
    next_done = (
        f"(SELECT MIN(g.finished_ms) FROM {table} g WHERE {TARGET.format(a='g', b='o')} "  # noqa: S608
        f"AND g.outcome = %s AND g.finished_ms > o.finished_ms)"
    )
    done = Outcome.DONE.value
    with connection.cursor() as cursor:
        if full:
            # Statistics first: planned on a table the planner still thinks is empty,
            # PostgreSQL's first catch-up of 100,000 rows took two minutes instead of seconds.
            cursor.execute(f"ANALYZE {table}")
            cursor.execute(
                f"UPDATE {table} AS o SET next_done_ms = {next_done} "  # noqa: S608
                "WHERE o.finished_ms IS NOT NULL",
                [done],
            )
        else:
            # Their own next DONE (one may have finished before them: seeded out of order).
            cursor.execute(
                f"UPDATE {table} AS o SET next_done_ms = {next_done} "  # noqa: S608
                "WHERE o.batch = %s AND o.finished_ms IS NOT NULL",
                [done, batch],
            )
            # The earlier rows of their target whose next DONE is one of them.
            cursor.execute(
                f"UPDATE {table} AS o SET next_done_ms = {next_done} WHERE o.deployment_id IN ("  # noqa: S608
                f"SELECT x.deployment_id FROM {table} r JOIN {table} x "
                f"ON {TARGET.format(a='x', b='r')} AND x.finished_ms < r.finished_ms "
                "WHERE r.batch = %s AND r.outcome = %s AND x.batch <> %s "
                "AND (x.next_done_ms IS NULL OR x.next_done_ms > r.finished_ms))",
                [done, batch, done, batch],
            )
        # Reverted: a later DONE of the target went from this one's version back to the
        # version that ran before it.
        reverter = "" if full else "r.batch = %s AND "
        cursor.execute(
            f"UPDATE {table} SET reverted = %s WHERE deployment_id IN ("  # noqa: S608
            f"SELECT x.deployment_id FROM {table} r JOIN {table} x "
            f"ON {TARGET.format(a='x', b='r')} AND x.version_id = r.source_version_id "
            "AND x.source_version_id = r.version_id AND x.deployment_id < r.deployment_id "
            f"WHERE {reverter}r.outcome = %s AND x.outcome = %s)",
            [True, *([] if full else [batch]), done, done],
        )
