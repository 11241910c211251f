"""Job: keep the partition window moving.

Ahead: aggregated_analytics gets the partitions of this year and the next two, learning_events
those of this month and the next three (app.ensure_yearly_partition / ensure_monthly_partition,
which also enable and force RLS on each new partition).

Behind: a partition is detached and dropped only when its whole range is past retention, i.e.
its exclusive upper bound is at or before the cutoff; every row it holds is then older than the
cutoff, so no row inside retention is ever touched (a partition straddling the cutoff is kept
whole until a later run). Retention: aggregated_analytics 7 years on period_start;
learning_events EVENTS_RETENTION_MONTHS (default 13) on occurred_at. Both are measured back
from the run's day, so `{"date": ...}` replays the job as of that day. The rollups' input
fingerprints (app.rollup_inputs) of periods past the 7 years are deleted at the same time.
"""

from __future__ import annotations

import calendar
import os
from datetime import UTC, date, datetime, time

import psycopg

from ms8.jobs.runner import Job, JobInput, Outcome
from ms8.repositories import maintenance, rollups

YEARS_AHEAD = 2
MONTHS_AHEAD = 3
AGGREGATES_RETENTION_YEARS = 7
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
    first_month = as_of.replace(day=1)
    created = maintenance.ensure_yearly_partitions(
        conn, [as_of.year + i for i in range(YEARS_AHEAD + 1)]
    ) + maintenance.ensure_monthly_partitions(
        conn, [add_months(first_month, i) for i in range(MONTHS_AHEAD + 1)]
    )
    aggregates_cutoff, events_cutoff = cutoffs(as_of, events_months)
    dropped: list[str] = []
    for part in maintenance.partitions(conn, "aggregated_analytics"):
        if isinstance(part.upper, date) and part.upper <= aggregates_cutoff:
            maintenance.drop_partition(conn, "aggregated_analytics", part.name)
            dropped.append(part.name)
    for part in maintenance.partitions(conn, "learning_events"):
        if isinstance(part.upper, datetime) and part.upper <= events_cutoff:
            maintenance.drop_partition(conn, "learning_events", part.name)
            dropped.append(part.name)
    # The rollups' input fingerprints of periods whose history is gone go with it.
    forgotten = rollups.forget_fingerprints_before(conn, aggregates_cutoff)
    # Population rollups keep the same 7 years.
    rollups_deleted = rollups.delete_before(conn, aggregates_cutoff)
    return Outcome(
        rows_written=forgotten + rollups_deleted,
        partitions_created=len(created),
        partitions_dropped=len(dropped),
        details={
            "created": created, "dropped": dropped,
            "aggregatesCutoff": aggregates_cutoff.isoformat(),
            "eventsCutoff": events_cutoff.isoformat(), "eventsRetentionMonths": events_months,
            "fingerprintsForgotten": forgotten, "populationRollupsDeleted": rollups_deleted,
        },
    )


JOB = Job("maintain_partitions", maintain)
