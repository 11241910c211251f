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
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
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


@dataclass(slots=True)
class _Done:
    """What one shard (some organizations, or all) rolled up."""

    counts: dict[Granularity, repo.RollupCounts]
    changed: dict[Granularity, int]
    invalid_days: dict[str, int]


def _roll_up_organizations(conn: psycopg.Connection, spans: dict[Granularity, tuple[date, date]],
                           organizations: Sequence[UUID] | None) -> _Done:
    """The changed periods of these organizations (None: every organization), rolled up and
    their fingerprints saved, in the transaction of `conn`."""
    changes = repo.changed_periods(conn, spans, organizations)
    changed = changes.periods
    counts = repo.rollup_spans(conn, spans, {g: [(p.organization_id, p.period_start) for p in prints]
                                             for g, prints in changed.items()})
    for granularity, prints in changed.items():
        repo.save_fingerprints(conn, granularity, prints)
    return _Done(counts, {g: len(p) for g, p in changed.items()}, changes.invalid_days)


def _in_own_transaction(spans: dict[Granularity, tuple[date, date]], organizations: Sequence[UUID]) -> _Done:
    """A shard on an owner connection of its own, committed when it is done."""
    database = db.Database("owner")
    try:
        with database.transaction(db.as_maintenance) as (conn, _):
            return _roll_up_organizations(conn, spans, organizations)
    finally:
        database.reset()


def _sharded(conn: psycopg.Connection, spans: dict[Granularity, tuple[date, date]], connections: int) -> list[_Done]:
    """The organizations dealt into `connections` shards of about equal learners: the first on
    the job's own connection and transaction, each other on a connection of its own at the same
    time (threads: the work is in PostgreSQL, one backend per shard), committed when done."""
    shards = deal(repo.organization_learners(conn), connections)
    if len(shards) < 2:
        return [_roll_up_organizations(conn, spans, None)]
    with ThreadPoolExecutor(max_workers=len(shards) - 1, thread_name_prefix="rollups") as pool:
        others = [pool.submit(_in_own_transaction, spans, shard) for shard in shards[1:]]
        try:
            own = _roll_up_organizations(conn, spans, shards[0])
        finally:
            # The others finish (or fail) before this transaction ends either way.
            wait(others)
        return [own, *(f.result() for f in others)]


def roll_up(conn: psycopg.Connection, params: JobInput) -> Outcome:
    spans = windows(params.as_of, params.days or 1)
    details: dict[str, object] = {}
    erased = repo.pending_spans(conn)
    if erased is not None:  # learner days were deleted (erasure): recompute every period they were in
        spans = widen(spans, *erased)
        details["erasedDays"] = {"from": erased[0].isoformat(), "to": erased[1].isoformat()}
    connections = config.settings().rollup_connections
    done = (_sharded(conn, spans, connections) if connections > 1
            else [_roll_up_organizations(conn, spans, None)])
    written = 0
    for granularity, (start, end) in spans.items():
        counts = [d.counts[granularity] for d in done]
        inserted, updated, deleted = (sum(getattr(c, k) for c in counts) for k in ("inserted", "updated", "deleted"))
        written += inserted + updated + deleted
        details[granularity] = {
            "from": start.isoformat(), "to": end.isoformat(),
            "periodsChanged": sum(d.changed[granularity] for d in done),
            "inserted": inserted, "updated": updated, "deleted": deleted,
        }
    if connections > 1:
        details["connections"] = len(done)
    invalid = {org: n for d in done for org, n in d.invalid_days.items()}
    if invalid:  # left out of every rollup; the other days and organizations are rolled up as usual
        logger.warning("rollup_analytics: learner days out of range left out", extra={"invalidDays": invalid})
        details["invalidDays"] = invalid
    return Outcome(rows_written=written, details=details,
                   reported={"OutOfRangeDays": sum(invalid.values())})


JOB = Job("rollup_analytics", roll_up)
