"""Job: keep the partition window moving, and the history within its retention.

Ahead: population_rollups gets a yearly partition for every year from the retention cutoff's
to two years on, so that a rollup of any retained period (a backfill, an erasure's recompute)
has a partition to go to; learning_events the partitions of this month and the next three
(app.ensure_yearly_partition / ensure_monthly_partition, which also enable and force RLS on each
new partition).

Behind: a partition is detached and dropped only when its whole range is past retention, i.e.
its exclusive upper bound is at or before the cutoff; every row it holds is then older than the
cutoff, so no row inside retention is ever touched (a partition straddling the cutoff is kept
whole until a later run). Retention: population_rollups 7 years on period_start (and so the
legacy aggregated_analytics, no longer written, whose partitions are only dropped);
learning_events EVENTS_RETENTION_MONTHS (default 13) on occurred_at. Both are measured back
from the run's day, so `{"date": ...}` replays the job as of that day.

Rows: learner days (learner_daily_activity, the rollups' input) are kept as long as the
rollups, 7 years on day, and deleted in batches past it (LEARNER_DAYS_BATCH rows a statement, at
most LEARNER_DAYS_BATCHES statements a run; the rest on the next run). The rollups' input
fingerprints (app.population_rollup_inputs, and the old history's app.rollup_inputs) of periods
past the 7 years are deleted at the same time.
"""

from __future__ import annotations

import calendar
import os
from datetime import UTC, date, datetime, time

import psycopg

from ms8.jobs.runner import Job, JobInput, Outcome
from ms8.repositories import days, maintenance, rollups

YEARS_AHEAD = 2
MONTHS_AHEAD = 3
AGGREGATES_RETENTION_YEARS = 7
# A statement's deleted days pass through the erasure trigger's transition table: keep it small.
LEARNER_DAYS_BATCH = 10_000
LEARNER_DAYS_BATCHES = 50
DEFAULT_EVENTS_RETENTION_MONTHS = 13
# The rollups read the last complete month's events: retention shorter than that breaks them.
MIN_EVENTS_RETENTION_MONTHS = 2


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months, clamped to the target month's last day (Mar 31 - 1 = Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def events_retention_months() -> int:
    raw = os.environ.get("EVENTS_RETENTION_MONTHS", str(DEFAULT_EVENTS_RETENTION_MONTHS))
    try:
        months = int(raw)
    except ValueError as exc:
        raise ValueError(f"EVENTS_RETENTION_MONTHS must be an integer, not {raw!r}") from exc
    if months < MIN_EVENTS_RETENTION_MONTHS:
        raise ValueError(f"EVENTS_RETENTION_MONTHS must be at least {MIN_EVENTS_RETENTION_MONTHS}")
    return months


def cutoffs(as_of: date, events_months: int) -> tuple[date, datetime]:
    """The oldest retained period_start and occurred_at as of `as_of` (rows at or after are kept)."""
    aggregates = add_months(as_of, -12 * AGGREGATES_RETENTION_YEARS)
    events = datetime.combine(add_months(as_of, -events_months), time(), UTC)
    return aggregates, events


def maintain(conn: psycopg.Connection, params: JobInput) -> Outcome:
    as_of = params.as_of
    events_months = events_retention_months()
    aggregates_cutoff, events_cutoff = cutoffs(as_of, events_months)
    first_month = as_of.replace(day=1)
    created = maintenance.ensure_yearly_partitions(
        conn, "population_rollups", range(aggregates_cutoff.year, as_of.year + YEARS_AHEAD + 1)
    ) + maintenance.ensure_monthly_partitions(
        conn, [add_months(first_month, i) for i in range(MONTHS_AHEAD + 1)]
    )
    dropped: list[str] = []
    retained_from: list[tuple[maintenance.PartitionedTable, date | datetime]] = [
        ("population_rollups", aggregates_cutoff), ("aggregated_analytics", aggregates_cutoff),
        ("learning_events", events_cutoff),
    ]
    for parent, cutoff in retained_from:
        for part in maintenance.partitions(conn, parent):
            if part.upper is not None and part.upper <= cutoff:
                maintenance.drop_partition(conn, parent, part.name)
                dropped.append(part.name)
    # The rollups' input fingerprints of periods whose history is gone go with it.
    forgotten = rollups.forget_fingerprints_before(conn, aggregates_cutoff)
    days_deleted, days_left = days.delete_before(
        conn, aggregates_cutoff, batch=LEARNER_DAYS_BATCH, batches=LEARNER_DAYS_BATCHES)
    return Outcome(
        rows_written=forgotten + days_deleted,
        partitions_created=len(created),
        partitions_dropped=len(dropped),
        details={
            "created": created, "dropped": dropped,
            "aggregatesCutoff": aggregates_cutoff.isoformat(),
            "eventsCutoff": events_cutoff.isoformat(), "eventsRetentionMonths": events_months,
            "fingerprintsForgotten": forgotten,
            "learnerDaysDeleted": days_deleted, "learnerDaysLeft": days_left,
        },
    )


JOB = Job("maintain_partitions", maintain)
