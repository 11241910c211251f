"""The organization history rollup: learning_events -> aggregated_analytics, one statement per
granularity (owner connection, maintenance transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal

import psycopg

from ms8.repositories import maintenance

Granularity = Literal["daily", "weekly", "monthly"]
# date_trunc unit and period length per granularity; date_trunc('week') starts on ISO Mondays.
UNITS: dict[Granularity, tuple[str, str]] = {
    "daily": ("day", "1 day"),
    "weekly": ("week", "7 days"),
    "monthly": ("month", "1 month"),
}

# How it computes, and why so:
# - per_day first folds events into one row per user and UTC day, so the active-day count is a
#   plain count(*) one level up (no count(DISTINCT)) and a period of any length reuses it.
# - Scores are summed as numeric: exact whatever the order rows arrive in (parallel or hashed
#   plans add float8 in varying order), so a re-run computes bit-identical figures and the
#   IS DISTINCT FROM test finds nothing to write. Stored figures are rounded to 6 places.
# - Rows of these periods that the data no longer supports (e.g. an erased user was their only
#   active learner) are deleted, so a replay leaves exactly what a first run would.
# - Unchanged rows are filtered out before the INSERT: ON CONFLICT DO UPDATE would otherwise
#   still lock (and so write) every conflicting row even when its WHERE finds no change.
_ROLLUP = """
WITH per_day AS (
    SELECT e.organization_id, e.user_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
           count(*) FILTER (WHERE e.verb = 'completed') AS completions,
           sum(e.score::numeric) FILTER (WHERE e.verb IN ('passed', 'failed', 'attempted')) AS score_sum,
           count(e.score) FILTER (WHERE e.verb IN ('passed', 'failed', 'attempted')) AS scored
    FROM learning_events e
    WHERE e.occurred_at >= %(from_ts)s AND e.occurred_at < %(to_ts)s
    GROUP BY 1, 2, 3
),
per_user AS (
    SELECT d.organization_id, d.user_id,
           date_trunc(%(unit)s, d.day::timestamp)::date AS period_start,
           sum(d.completions) AS completions,
           count(*) AS active_days,
           sum(d.score_sum) / nullif(sum(d.scored), 0) AS mastery
    FROM per_day d
    JOIN users u ON u.id = d.user_id AND 'learner' = ANY (u.roles)
    GROUP BY 1, 2, 3
),
metric_values AS (
    SELECT p.organization_id, p.period_start, s.period_end, m.analytics_type, m.metric, m.value
    FROM per_user p
    CROSS JOIN LATERAL (
        SELECT (p.period_start::timestamp + %(step)s::interval)::date AS period_end
    ) s
    CROSS JOIN LATERAL (VALUES
        ('learning_velocity', 'velocity', p.completions * 7 / (s.period_end - p.period_start)::numeric),
        ('engagement', 'engagement', p.active_days / (s.period_end - p.period_start)::numeric),
        ('mastery', 'mastery', p.mastery)
    ) AS m(analytics_type, metric, value)
    WHERE m.value IS NOT NULL
),
stats AS (
    SELECT organization_id, period_start, period_end, analytics_type, metric,
           count(*)::integer AS user_count, avg(value) AS mean, min(value) AS lo, max(value) AS hi,
           percentile_cont(ARRAY[0.25, 0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY value::float8) AS q
    FROM metric_values
    GROUP BY 1, 2, 3, 4, 5
),
computed AS (
    SELECT organization_id, period_start, period_end, analytics_type, user_count,
           jsonb_build_object(
               'metric', metric,
               'avg', trim_scale(round(mean, 6)),
               'p25', trim_scale(round(q[1]::numeric, 6)),
               'p50', trim_scale(round(q[2]::numeric, 6)),
               'p75', trim_scale(round(q[3]::numeric, 6)),
               'p90', trim_scale(round(q[4]::numeric, 6)),
               'min', trim_scale(round(lo, 6)),
               'max', trim_scale(round(hi, 6))) AS data
    FROM stats
),
written AS (
    INSERT INTO aggregated_analytics AS t
        (organization_id, granularity, role, analytics_type, period_start, period_end, user_count, data)
    SELECT c.organization_id, %(granularity)s, 'learner', c.analytics_type, c.period_start,
           c.period_end, c.user_count, c.data
    FROM computed c
    WHERE NOT EXISTS (
        SELECT 1 FROM aggregated_analytics o
        WHERE o.organization_id = c.organization_id AND o.granularity = %(granularity)s
          AND o.analytics_type = c.analytics_type AND o.role = 'learner'
          AND o.period_start = c.period_start
          AND o.period_end = c.period_end AND o.user_count = c.user_count AND o.data = c.data
    )
    ORDER BY c.organization_id, c.analytics_type, c.period_start
    ON CONFLICT (organization_id, granularity, analytics_type, role, period_start) DO UPDATE
    SET period_end = EXCLUDED.period_end, user_count = EXCLUDED.user_count, data = EXCLUDED.data
    WHERE (t.period_end, t.user_count, t.data)
          IS DISTINCT FROM (EXCLUDED.period_end, EXCLUDED.user_count, EXCLUDED.data)
    -- xmax is not available from a partitioned table here; an updated row keeps its created_at.
    RETURNING t.created_at = t.updated_at AS inserted
),
removed AS (
    DELETE FROM aggregated_analytics t
    WHERE t.granularity = %(granularity)s AND t.role = 'learner'
      AND t.analytics_type IN ('learning_velocity', 'engagement', 'mastery')
      AND t.period_start >= %(from_date)s AND t.period_start < %(to_date)s
      AND NOT EXISTS (
          SELECT 1 FROM computed c
          WHERE c.organization_id = t.organization_id AND c.analytics_type = t.analytics_type
            AND c.period_start = t.period_start
      )
    RETURNING 1
)
SELECT (SELECT count(*) FILTER (WHERE inserted) FROM written),
       (SELECT count(*) FILTER (WHERE NOT inserted) FROM written),
       (SELECT count(*) FROM removed)
"""


@dataclass(frozen=True, slots=True)
class RollupCounts:
    inserted: int
    updated: int
    deleted: int

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.deleted


def rollup(conn: psycopg.Connection, granularity: Granularity, start: date, end: date) -> RollupCounts:
    """Recompute the `granularity` rows of every period in [start, end) for every organization.

    `start` and `end` must be period boundaries (a Monday for weekly, a 1st for monthly). Per
    period and learner active in it: learning_velocity = completions per week, engagement =
    active UTC days / period days, mastery = mean score of scored assessment events. Per
    organization and type: user_count and {metric, avg, p25, p50, p75, p90, min, max}.
    """
    unit, step = UNITS[granularity]
    row = conn.execute(
        _ROLLUP,
        {
            "granularity": granularity, "unit": unit, "step": step,
            "from_ts": datetime.combine(start, time(), UTC), "to_ts": datetime.combine(end, time(), UTC),
            "from_date": start, "to_date": end,
        },
    ).fetchone()
    assert row is not None
    return RollupCounts(int(row[0]), int(row[1]), int(row[2]))


def oldest_event_partition_start(conn: psycopg.Connection) -> datetime | None:
    """The lower bound of the oldest learning_events partition: events before it are gone."""
    bounds = [p.lower for p in maintenance.partitions(conn, "learning_events") if isinstance(p.lower, datetime)]
    return min(bounds) if bounds else None
