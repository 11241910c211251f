"""Job: daily, weekly (ISO) and monthly organization history in aggregated_analytics.

The analytics table keeps only each user's latest snapshot, so history is computed from
learning_events, per period (UTC days; ISO weeks Monday to Monday; calendar months),
organization and analytics type, over the learners active in the period (role 'learner'):

- learning_velocity: completions per week in the period (completed events / (days / 7));
- engagement: share of the period's days with any event;
- mastery: mean score of the period's scored assessment events (passed / failed / attempted).

skill_gap is not rolled up: it measures mastery against the organization's skill targets as
they are at one moment, and the targets' past values are not kept, so a past period's gap
cannot be recomputed faithfully.

What a run covers, for the day D it runs as (default today, UTC) and `days` N (default 1):
daily, the N days before D; weekly, the complete ISO weeks that overlap those days, and always
the last complete week before D; monthly likewise with calendar months. So the daily schedule
also refreshes last week and last month (late events are picked up; unchanged rows are not
rewritten), and `{"date": D, "days": 90}` backfills a quarter.

Only periods whose inputs changed are recomputed: one pass over the window's events compares
each (organization, period)'s learner events (count and digest) with what it was last rolled up
from (app.rollup_inputs), so an unchanged re-run reads the events once and writes nothing, and
the daily schedule recomputes last week and last month only where something arrived.

Periods whose events are past the events' retention are refused rather than recomputed from
nothing: the rollup would otherwise delete history it can no longer rebuild. The partitions
the periods fall in are created first; should one still be missing, the INSERT fails loudly
("no partition of relation found for row"), never dropping rows silently.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

import psycopg

from ms8.jobs.partitions import add_months
from ms8.jobs.runner import Job, JobInput, Outcome
from ms8.repositories import maintenance
from ms8.repositories import rollups as repo


def windows(as_of: date, days: int = 1) -> dict[repo.Granularity, tuple[date, date]]:
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


def roll_up(conn: psycopg.Connection, params: JobInput) -> Outcome:
    spans = windows(params.as_of, params.days or 1)
    earliest = min(start for start, _ in spans.values())
    oldest = repo.oldest_event_partition_start(conn)
    retained_from = oldest.astimezone(UTC).date() if oldest else None
    if retained_from is None or retained_from > earliest:
        raise ValueError(
            f"events before {retained_from or 'today'} are no longer retained: "
            f"a rollup from {earliest} would erase history it cannot rebuild"
        )
    years = sorted({y for start, end in spans.values() for y in range(start.year, (end - timedelta(days=1)).year + 1)})
    created = maintenance.ensure_yearly_partitions(conn, years)
    details: dict[str, object] = {"partitionsCreated": created}
    changed = repo.changed_periods(conn, spans)
    written = 0
    for granularity, (start, end) in spans.items():
        prints = changed[granularity]
        counts = repo.rollup(conn, granularity, start, end, [(p.organization_id, p.period_start) for p in prints])
        repo.save_fingerprints(conn, granularity, prints)
        written += counts.written
        details[granularity] = {
            "from": start.isoformat(), "to": end.isoformat(), "periodsChanged": len(prints),
            "inserted": counts.inserted, "updated": counts.updated, "deleted": counts.deleted,
        }
    return Outcome(rows_written=written, partitions_created=len(created), details=details)


JOB = Job("rollup_analytics", roll_up)
