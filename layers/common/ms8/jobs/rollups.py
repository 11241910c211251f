"""Job: daily, weekly (ISO) and monthly population rollups in population_rollups.

For every organization and every trainer cohort, per period (UTC days; ISO weeks Monday to
Monday; calendar months): learners, active learners and their share, completions, velocity,
assessments, mean score, minutes per active learner, and the distribution across learners of
completions, active days, mean score and minutes (docs/ANALYTICS.md). Computed from the learners'
days (learner_daily_activity, kept by ingest), never from raw events.

skill_gap is not rolled up: it measures mastery against the organization's skill targets as
they are at one moment, and the targets' past values are not kept.

What a run covers, for the day D it runs as (default today, UTC) and `days` N (default 1):
daily, the N days before D; weekly, the complete ISO weeks that overlap those days, and always
the last complete week before D; monthly likewise with calendar months. So the daily schedule
also refreshes last week and last month (late events are picked up), and `{"date": D, "days":
90}` backfills a quarter. Only the (organization, period) pairs whose inputs changed are
recomputed: one pass over the window's learner days and the memberships compares each pair's
fingerprint with what it was last computed from (app.population_rollup_inputs), so an unchanged
re-run reads the days once and writes nothing; of the pairs recomputed, only rows that differ
are written. The population is the organization's learners and cohorts as they are at the run
(assignments and roles have no history): a learner who joins a cohort is counted in the cohort's
periods of the window the next run covers.

With ROLLUP_CONNECTIONS N above 1 the changed pairs are dealt by organization into N shards of
about equal inputs; the first is rolled up in the job's transaction, each other one at the same
time on an owner connection and in a transaction of its own (committed with its fingerprints:
a failed run leaves whole shards behind, and the next run finds the rest changed).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from datetime import date, timedelta
from uuid import UUID

import psycopg

from ms8 import config, db
from ms8.domain.shards import deal
from ms8.domain.vocabulary import Granularity
from ms8.jobs.partitions import add_months
from ms8.jobs.runner import Job, JobInput, Outcome, logger
from ms8.repositories import rollups as repo


def windows(as_of: date, days: int = 1) -> dict[Granularity, tuple[date, date]]:
    """[first period start, end of last period) per granularity, for a run as of `as_of`."""
    window_start = as_of - timedelta(days=days)
    this_monday = as_of - timedelta(days=as_of.weekday())
    last_week = this_monday - timedelta(days=7)
    first_week = min(window_start - timedelta(days=window_start.weekday()), last_week)
    this_month = as_of.replace(day=1)
    last_month = add_months(this_month, -1)
    first_month = min(window_start.replace(day=1), last_month)
    return {
        "daily": (window_start, as_of),
        "weekly": (first_week, this_monday),
        "monthly": (first_month, this_month),
    }


def widen(spans: dict[Granularity, tuple[date, date]], first: date, last: date,
          ) -> dict[Granularity, tuple[date, date]]:
    """The spans, each grown to cover every period holding a day of [first, last] (periods that
    have ended only: those a run writes)."""
    out = dict(spans)
    for granularity, (start, end) in spans.items():
        lo = repo.period_start(granularity, first)
        hi = min(repo.next_period(granularity, repo.period_start(granularity, last)), end)
        out[granularity] = (min(start, lo), max(end, hi))
    return out


Prints = dict[Granularity, list[repo.Fingerprint]]


def _roll_up_changed(conn: psycopg.Connection, spans: dict[Granularity, tuple[date, date]], prints: Prints,
                     ) -> dict[Granularity, repo.RollupCounts]:
    """The changed periods `prints` rolled up and their fingerprints saved, in the transaction of
    `conn`."""
    counts = repo.rollup_spans(conn, spans, {g: [(p.organization_id, p.period_start) for p in ps]
                                             for g, ps in prints.items()})
    for granularity, ps in prints.items():
        repo.save_fingerprints(conn, granularity, ps)
    return counts


def _in_own_transaction(spans: dict[Granularity, tuple[date, date]], prints: Prints,
                        ) -> dict[Granularity, repo.RollupCounts]:
    """A shard on an owner connection of its own, committed when it is done."""
    database = db.Database("owner")
    try:
        with database.transaction(db.as_maintenance) as (conn, _):
            return _roll_up_changed(conn, spans, prints)
    finally:
        database.reset()


def shards(changed: Prints, connections: int) -> list[Prints]:
    """The changed periods dealt by organization into at most `connections` shards of about equal
    work: an organization's weight is the learner days and memberships its changed periods are
    computed from (their fingerprints' `inputs`)."""
    by_org: dict[UUID, Prints] = {}
    for granularity, prints in changed.items():
        for p in prints:
            by_org.setdefault(p.organization_id, {g: [] for g in changed})[granularity].append(p)
    weights = [(org, sum(p.inputs or 1 for ps in mine.values() for p in ps)) for org, mine in by_org.items()]
    return [{g: [p for org in orgs for p in by_org[org][g]] for g in changed}
            for orgs in deal(weights, connections)]


def _roll_up_sharded(conn: psycopg.Connection, spans: dict[Granularity, tuple[date, date]], changed: Prints,
                     connections: int) -> list[dict[Granularity, repo.RollupCounts]]:
    """The first shard on the job's own connection and transaction, each other one at the same
    time on a connection of its own (threads: the work is in PostgreSQL, one backend per shard),
    committed when done."""
    parts = shards(changed, connections)
    if len(parts) < 2:
        return [_roll_up_changed(conn, spans, changed)]
    with ThreadPoolExecutor(max_workers=len(parts) - 1, thread_name_prefix="rollups") as pool:
        others = [pool.submit(_in_own_transaction, spans, part) for part in parts[1:]]
        try:
            own = _roll_up_changed(conn, spans, parts[0])
        finally:
            wait(others)  # the others finish (or fail) before this transaction ends, either way
            failed = [(n, f.exception()) for n, f in enumerate(others, start=2) if f.exception() is not None]
            for n, error in failed:  # each one logged, whichever is raised
                logger.error("rollup_analytics: a shard failed", extra={
                    "shard": n, "shards": len(parts), "committed": len(others) - len(failed), "error": repr(error)})
        return [own, *(f.result() for f in others)]


def roll_up(conn: psycopg.Connection, params: JobInput) -> Outcome:
    spans = windows(params.as_of, params.days or 1)
    details: dict[str, object] = {}
    repo.use_rollup_settings(conn)  # the fingerprints' pass reads every day of the window too
    erased = repo.pending_spans(conn)
    if erased is not None:  # learner days were deleted (erasure): recompute every period they were in
        spans = widen(spans, *erased)
        details["erasedDays"] = {"from": erased[0].isoformat(), "to": erased[1].isoformat()}
    changes = repo.changed_periods(conn, spans)
    changed = changes.periods
    connections = config.settings().rollup_connections
    done = _roll_up_sharded(conn, spans, changed, connections)
    written = 0
    for granularity, (start, end) in spans.items():
        total = sum((d[granularity] for d in done), repo.RollupCounts(0, 0, 0))
        written += total.written
        details[granularity] = {
            "from": start.isoformat(), "to": end.isoformat(), "periodsChanged": len(changed[granularity]),
            "inserted": total.inserted, "updated": total.updated, "deleted": total.deleted,
        }
    if connections > 1:
        details["connections"] = len(done)
    invalid = changes.invalid_days
    if invalid:  # left out of every rollup; the other days and organizations are rolled up as usual
        logger.warning("rollup_analytics: learner days out of range left out", extra={"invalidDays": invalid})
        details["invalidDays"] = invalid
    return Outcome(rows_written=written, details=details,
                   reported={"OutOfRangeDays": sum(invalid.values())})


JOB = Job("rollup_analytics", roll_up)
