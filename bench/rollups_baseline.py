"""The rollup job as it was before population rollups (kept as the benchmark's baseline): the
per-type organization history of active learners in aggregated_analytics, computed from the raw
learning events, with a fingerprint per organization and period (app.rollup_inputs) so that an
unchanged period is skipped. Statements copied unchanged from the service's previous version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from uuid import UUID

import psycopg

Granularity = Literal["daily", "weekly", "monthly"]
# date_trunc unit and period length per granularity; date_trunc('week') starts on ISO Mondays.
UNITS: dict[Granularity, tuple[str, str]] = {
    "daily": ("day", "1 day"),
    "weekly": ("week", "7 days"),
    "monthly": ("month", "1 month"),
}
# Stored with each period's input fingerprint: bump it when the figures' definition changes,
# and the next run recomputes every period in its window.
ROLLUP_VERSION = 1

# Scores count in micro-units (integers): sums of integers are exact whatever order rows arrive
# in, so a re-run computes bit-identical figures and IS DISTINCT FROM finds nothing to write.
_SCORED = "e.verb IN ('passed', 'failed', 'attempted')"

# How it computes, and why so:
# - per_user folds events into one row per user and period in one pass (a bit mask of the
#   active days, no count(DISTINCT)); the learner test joins users after that, on fewer rows.
# - velocity (completions * 7 / days) and engagement (active days / days) are the integer
#   counts scaled by a per-period constant, so their percentiles, min and max are the counts'
#   scaled, and their averages exact ratios of integer sums. One row per organization and
#   period carries all three types; the VALUES list turns it into one row per type.
# - Rows of these periods that the data no longer supports (e.g. an erased user was their only
#   active learner) are deleted, so a replay leaves exactly what a first run would.
# - Unchanged rows are filtered out before the INSERT: ON CONFLICT DO UPDATE would otherwise
#   still lock (and so write) every conflicting row even when its WHERE finds no change.
_ROLLUP = f"""
WITH scope AS (
    SELECT * FROM unnest(%(scope_orgs)s::uuid[], %(scope_starts)s::date[]) AS s(organization_id, period_start)
),
per_user AS (
    SELECT e.organization_id, x.period_start, e.user_id,
           count(*) FILTER (WHERE e.verb = 'completed') AS completions,
           -- One bit per active UTC day of the period (at most 31): no count(DISTINCT day).
           bit_count(bit_or(1::bigint << (x.day - x.period_start))::bit(64)) AS active_days,
           sum(round(e.score::float8 * 1e6)::bigint) FILTER (WHERE {_SCORED}) AS score_micros,
           count(e.score) FILTER (WHERE {_SCORED}) AS scored
    FROM learning_events e
    CROSS JOIN LATERAL (
        SELECT (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
               date_trunc(%(unit)s, e.occurred_at AT TIME ZONE 'UTC')::date AS period_start
    ) x
    WHERE e.occurred_at >= %(from_ts)s AND e.occurred_at < %(to_ts)s
      AND (%(everything)s OR e.organization_id = ANY (%(scope_orgs)s::uuid[]))
    GROUP BY 1, 2, 3
),
stats AS (
    SELECT p.organization_id, p.period_start, x.period_end, x.period_end - p.period_start AS days,
           count(*) AS users,
           sum(p.completions) AS completions, min(p.completions) AS completions_min,
           max(p.completions) AS completions_max,
           percentile_cont(ARRAY[0.25, 0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY p.completions::float8) AS completions_q,
           sum(p.active_days) AS active, min(p.active_days) AS active_min, max(p.active_days) AS active_max,
           percentile_cont(ARRAY[0.25, 0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY p.active_days::float8) AS active_q,
           count(*) FILTER (WHERE p.scored > 0) AS scored_users,
           avg(p.score_micros::numeric / p.scored) FILTER (WHERE p.scored > 0) AS mastery_avg,
           min(p.score_micros::float8 / p.scored) FILTER (WHERE p.scored > 0) AS mastery_min,
           max(p.score_micros::float8 / p.scored) FILTER (WHERE p.scored > 0) AS mastery_max,
           percentile_cont(ARRAY[0.25, 0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY p.score_micros::float8 / p.scored)
               FILTER (WHERE p.scored > 0) AS mastery_q
    FROM per_user p
    JOIN users u ON u.id = p.user_id AND 'learner' = ANY (u.roles)
    CROSS JOIN LATERAL (SELECT (p.period_start::timestamp + %(step)s::interval)::date AS period_end) x
    WHERE %(everything)s
       OR (p.organization_id, p.period_start) IN (SELECT organization_id, period_start FROM scope)
    GROUP BY p.organization_id, p.period_start, x.period_end
),
computed AS (
    SELECT s.organization_id, s.period_start, s.period_end, m.analytics_type, m.user_count,
           jsonb_build_object(
               'metric', m.metric,
               'avg', trim_scale(round(m.avg, 6)),
               'p25', trim_scale(round((m.q[1] * m.scale)::numeric, 6)),
               'p50', trim_scale(round((m.q[2] * m.scale)::numeric, 6)),
               'p75', trim_scale(round((m.q[3] * m.scale)::numeric, 6)),
               'p90', trim_scale(round((m.q[4] * m.scale)::numeric, 6)),
               'min', trim_scale(round((m.lo * m.scale)::numeric, 6)),
               'max', trim_scale(round((m.hi * m.scale)::numeric, 6))) AS data
    FROM stats s
    CROSS JOIN LATERAL (VALUES
        ('learning_velocity', 'velocity', s.users::integer,
         s.completions * 7 / (s.days * s.users)::numeric,
         s.completions_q, s.completions_min::float8, s.completions_max::float8, 7.0::float8 / s.days),
        ('engagement', 'engagement', s.users::integer,
         s.active / (s.days * s.users)::numeric,
         s.active_q, s.active_min::float8, s.active_max::float8, 1.0::float8 / s.days),
        ('mastery', 'mastery', s.scored_users::integer,
         s.mastery_avg / 1e6, s.mastery_q, s.mastery_min, s.mastery_max, 1e-6::float8)
    ) AS m(analytics_type, metric, user_count, avg, q, lo, hi, scale)
    WHERE m.user_count > 0
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
      AND (%(everything)s
           OR (t.organization_id, t.period_start) IN (SELECT organization_id, period_start FROM scope))
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


def next_period(granularity: Granularity, start: date) -> date:
    """The start of the period after the one starting at `start`."""
    if granularity == "daily":
        return start + timedelta(days=1)
    if granularity == "weekly":
        return start + timedelta(days=7)
    year, month0 = divmod(start.year * 12 + start.month, 12)  # monthly periods start on the 1st
    return date(year, month0 + 1, 1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def rollup(
    conn: psycopg.Connection, granularity: Granularity, start: date, end: date,
    scope: Sequence[tuple[UUID, date]] | None = None,
) -> RollupCounts:
    """Recompute the `granularity` rows of the periods in [start, end): every organization's,
    or only the (organization, period start) pairs in `scope`.

    `start` and `end` must be period boundaries (a Monday for weekly, a 1st for monthly). Per
    period and learner active in it: learning_velocity = completions per week, engagement =
    active UTC days / period days, mastery = mean score of scored assessment events. Per
    organization and type: user_count and {metric, avg, p25, p50, p75, p90, min, max}.
    """
    if scope is not None:
        if not scope:
            return RollupCounts(0, 0, 0)
        # Read only the events of the periods in scope.
        start = max(start, min(s for _, s in scope))
        end = min(end, next_period(granularity, max(s for _, s in scope)))
    unit, step = UNITS[granularity]
    row = conn.execute(
        _ROLLUP,
        {
            "granularity": granularity, "unit": unit, "step": step,
            "from_ts": _midnight(start), "to_ts": _midnight(end), "from_date": start, "to_date": end,
            "everything": scope is None,
            "scope_orgs": [o for o, _ in scope or ()], "scope_starts": [s for _, s in scope or ()],
        },
    ).fetchone()
    assert row is not None
    return RollupCounts(int(row[0]), int(row[1]), int(row[2]))


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A period's learner events now: how many and their digest (None, None: there are none)."""

    organization_id: UUID
    period_start: date
    events: int | None
    digest: int | None


# One pass over the events: per organization and UTC day first (a few thousand rows), then per
# period of each granularity, compared with what each period was last computed from. A period
# differs when its events, their digest or the rollup version differ, and also when it has rows
# but no fingerprint or a fingerprint but no rows (rows written or deleted by hand): every period
# with learner events has an engagement row, so that is the row looked for. All joins are hash
# joins of a few thousand rows per granularity, whatever the statistics say.
_CHANGED = """
WITH spans AS (
    SELECT * FROM unnest(%(grans)s::text[], %(units)s::text[], %(starts)s::date[], %(ends)s::date[])
        AS s(granularity, unit, first_start, end_date)
),
per_day AS (
    SELECT e.organization_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
           count(*) AS events, bit_xor(uuid_hash_extended(e.event_id, 0)) AS digest
    FROM learning_events e
    JOIN users u ON u.id = e.user_id AND 'learner' = ANY (u.roles)
    WHERE e.occurred_at >= %(from_ts)s AND e.occurred_at < %(to_ts)s
    GROUP BY 1, 2
),
now_inputs AS (
    SELECT s.granularity, d.organization_id, date_trunc(s.unit, d.day::timestamp)::date AS period_start,
           sum(d.events)::bigint AS events, bit_xor(d.digest) AS digest
    FROM per_day d
    JOIN spans s ON d.day >= s.first_start AND d.day < s.end_date
    GROUP BY 1, 2, 3
),
present AS MATERIALIZED (
    -- Periods of the spans that have rows now; complete when the engagement row is there.
    SELECT a.granularity, a.organization_id, a.period_start,
           bool_or(a.analytics_type = 'engagement') AS complete
    FROM aggregated_analytics a
    JOIN spans s ON s.granularity = a.granularity AND a.period_start >= s.first_start
                AND a.period_start < s.end_date
    WHERE a.period_start >= %(first_start)s AND a.period_start < %(last_end)s  -- prunes partitions
      AND a.role = 'learner' AND a.analytics_type IN ('learning_velocity', 'engagement', 'mastery')
    GROUP BY 1, 2, 3
),
fingerprints AS MATERIALIZED (
    SELECT r.granularity, r.organization_id, r.period_start, r.events, r.digest, r.version
    FROM app.rollup_inputs r
    JOIN spans s ON s.granularity = r.granularity AND r.period_start >= s.first_start
                AND r.period_start < s.end_date
),
last_inputs AS (
    -- Rows without a fingerprint, or a fingerprint without its rows (either written or deleted
    -- by hand), count as never rolled up: the version is unknown.
    SELECT coalesce(f.granularity, p.granularity) AS granularity,
           coalesce(f.organization_id, p.organization_id) AS organization_id,
           coalesce(f.period_start, p.period_start) AS period_start,
           f.events, f.digest, CASE WHEN p.complete THEN f.version END AS version
    FROM fingerprints f
    FULL JOIN present p ON p.granularity = f.granularity AND p.organization_id = f.organization_id
                       AND p.period_start = f.period_start
)
SELECT coalesce(n.granularity, l.granularity), coalesce(n.organization_id, l.organization_id),
       coalesce(n.period_start, l.period_start), n.events, n.digest
FROM now_inputs n
FULL JOIN last_inputs l
  ON l.granularity = n.granularity AND l.organization_id = n.organization_id AND l.period_start = n.period_start
WHERE n.events IS DISTINCT FROM l.events OR n.digest IS DISTINCT FROM l.digest
   OR l.version IS DISTINCT FROM %(version)s
ORDER BY 1, 2, 3
"""


def changed_periods(
    conn: psycopg.Connection, spans: Mapping[Granularity, tuple[date, date]]
) -> dict[Granularity, list[Fingerprint]]:
    """Per granularity, the periods in its span whose learner events changed since their last
    rollup (or that were never rolled up), with their current fingerprints."""
    grans = list(spans)
    rows = conn.execute(_CHANGED, {
        "grans": grans, "units": [UNITS[g][0] for g in grans],
        "starts": [spans[g][0] for g in grans], "ends": [spans[g][1] for g in grans],
        "from_ts": _midnight(min(s for s, _ in spans.values())),
        "to_ts": _midnight(max(e for _, e in spans.values())), "version": ROLLUP_VERSION,
        "first_start": min(s for s, _ in spans.values()), "last_end": max(e for _, e in spans.values()),
    }).fetchall()
    out: dict[Granularity, list[Fingerprint]] = {g: [] for g in grans}
    for granularity, org, period_start, events, digest in rows:
        out[granularity].append(Fingerprint(org, period_start, events, digest))
    return out


_SAVE = """
WITH prints AS (
    SELECT * FROM unnest(%(orgs)s::uuid[], %(starts)s::date[], %(events)s::bigint[], %(digests)s::bigint[])
        AS p(organization_id, period_start, events, digest)
),
gone AS (
    DELETE FROM app.rollup_inputs r
    USING prints p
    WHERE p.events IS NULL AND r.organization_id = p.organization_id
      AND r.granularity = %(granularity)s AND r.period_start = p.period_start
)
INSERT INTO app.rollup_inputs AS r (organization_id, granularity, period_start, events, digest, version)
SELECT organization_id, %(granularity)s, period_start, events, digest, %(version)s
FROM prints WHERE events IS NOT NULL
ORDER BY organization_id, period_start
ON CONFLICT (organization_id, granularity, period_start) DO UPDATE
SET events = EXCLUDED.events, digest = EXCLUDED.digest, version = EXCLUDED.version, computed_at = now()
"""


def save_fingerprints(conn: psycopg.Connection, granularity: Granularity, prints: Sequence[Fingerprint]) -> None:
    """Record what these periods were just rolled up from (and forget periods with no events)."""
    if not prints:
        return
    conn.execute(_SAVE, {
        "granularity": granularity, "version": ROLLUP_VERSION,
        "orgs": [p.organization_id for p in prints], "starts": [p.period_start for p in prints],
        "events": [p.events for p in prints], "digests": [p.digest for p in prints],
    })


def run(conn: psycopg.Connection, spans: Mapping[Granularity, tuple[date, date]]) -> int:
    """The old job's work for these spans (its roll_up without the partition and retention
    checks, which cost nothing here): rows written."""
    changed = changed_periods(conn, spans)
    written = 0
    for granularity, (start, end) in spans.items():
        prints = changed[granularity]
        counts = rollup(conn, granularity, start, end, [(p.organization_id, p.period_start) for p in prints])
        save_fingerprints(conn, granularity, prints)
        written += counts.written
    return written
