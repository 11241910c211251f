"""Population rollups: learner_daily_activity -> population_rollups (owner connection,
maintenance transaction), and what the old organization history kept (its fingerprints).

One statement per granularity computes, for every organization and every trainer cohort at
once, each period's population figures from the learners' days, and writes only the rows that
differ from what is stored (docs/ANALYTICS.md defines every figure).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import psycopg

from ms8.domain import privacy
from ms8.domain.vocabulary import LEARNER, Granularity

# date_trunc unit and period length per granularity; date_trunc('week') starts on ISO Mondays.
UNITS: dict[Granularity, tuple[str, str]] = {
    "daily": ("day", "1 day"),
    "weekly": ("week", "7 days"),
    "monthly": ("month", "1 month"),
}
# Stored with each row: bump it when a figure's definition changes, and the next run rewrites
# every row of its window. 2: population rollups from learner days (1 was the per-type history
# of active learners in aggregated_analytics).
ROLLUP_VERSION = 2

# How it computes, and why so:
# - members: the population of each organization (its learners: users holding the learner role)
#   and of each trainer cohort (learners assigned to the trainer), as they are at the run;
#   scope_id is the organization's id for the organization and the trainer's for a cohort, so
#   every join is an equality (hashable), never IS NOT DISTINCT FROM.
# - per_user / per_user_objects fold the learners' days into one row per learner and period with
#   activity; distinct completed objects need their own pass (an object completed on two days of
#   one week counts once in that week, as in the learner's velocity).
# - Only active learners have rows: an organization of 2,500 learners of whom 100 learn does not
#   make 2,500 rows per period. The distributions are over all the population's learners, so the
#   inactive ones are zeros placed before the active values: the quartile at position
#   p x (learners - 1) is interpolated between the values at its floor and ceiling, a zero below
#   index (learners - active) and else the active value of that rank (row_number per metric).
#   This is percentile_cont over the padded values, without the padding (a test holds them equal
#   on a worked example). Mean score is over learners with a scored assessment (all active).
# - Every population gets a row for every period, with zeros when nobody was active.
# - Unchanged rows are filtered out before the INSERT (ON CONFLICT DO UPDATE would lock, and so
#   write, every conflicting row even when its WHERE finds no change); rows of the window the
#   data no longer supports (a cohort that lost its learners) are deleted.
_ROLLUP = """
WITH periods AS (
    SELECT p::date AS period_start, (p + %(step)s::interval)::date AS period_end
    FROM generate_series(%(start)s::timestamp, %(end)s::timestamp - interval '1 day', %(step)s::interval) AS p
),
members AS (
    SELECT u.organization_id, u.organization_id AS scope_id, NULL::uuid AS trainer_id, u.id AS user_id
    FROM users u WHERE %(learner)s = ANY (u.roles)
    UNION ALL
    SELECT u.organization_id, ta.trainer_id, ta.trainer_id, u.id
    FROM trainer_assignments ta JOIN users u ON u.id = ta.learner_id AND u.organization_id = ta.organization_id
    WHERE %(learner)s = ANY (u.roles)
),
populations AS MATERIALIZED (
    SELECT organization_id, scope_id, trainer_id, count(*) AS learners FROM members GROUP BY 1, 2, 3
),
per_user AS (
    SELECT d.user_id, date_trunc(%(unit)s, d.day::timestamp)::date AS period_start,
           count(*) AS active_days, sum(d.assessments) AS assessments, sum(d.scored) AS scored,
           sum(d.score_micros) AS score_micros, sum(d.duration_seconds) AS duration_seconds
    FROM learner_daily_activity d
    WHERE d.day >= %(start)s AND d.day < %(end)s
    GROUP BY 1, 2
),
per_user_objects AS (
    SELECT d.user_id, date_trunc(%(unit)s, d.day::timestamp)::date AS period_start, count(DISTINCT o) AS completions
    FROM learner_daily_activity d CROSS JOIN LATERAL unnest(d.completed_objects) AS o
    WHERE d.day >= %(start)s AND d.day < %(end)s AND d.completions > 0
    GROUP BY 1, 2
),
active AS (
    SELECT m.organization_id, m.scope_id, a.period_start, a.active_days, coalesce(c.completions, 0) AS completions,
           a.assessments, a.scored, a.score_micros, a.duration_seconds, a.duration_seconds / 60.0 AS minutes
    FROM per_user a
    JOIN members m ON m.user_id = a.user_id
    LEFT JOIN per_user_objects c ON c.user_id = a.user_id AND c.period_start = a.period_start
),
ranked AS (
    SELECT x.*, p.learners, count(*) OVER w AS active_n,
           row_number() OVER (w ORDER BY x.completions) AS r_completions,
           row_number() OVER (w ORDER BY x.active_days) AS r_active_days,
           row_number() OVER (w ORDER BY x.minutes) AS r_minutes
    FROM active x
    JOIN populations p ON p.organization_id = x.organization_id AND p.scope_id = x.scope_id
    WINDOW w AS (PARTITION BY x.organization_id, x.scope_id, x.period_start)
),
stats AS (
    SELECT organization_id, scope_id, period_start, count(*) AS active_learners,
           sum(completions) AS completions, sum(assessments) AS assessments, sum(scored) AS scored,
           sum(score_micros) AS score_micros, sum(duration_seconds) AS duration_seconds,
           app_zq(completions), app_zq(active_days), app_zq(minutes),
           percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY score_micros::float8 / scored / 1e6)
               FILTER (WHERE scored > 0) AS score_q,
           -- Sums where each learner adds a bounded amount (capped per day of the period): what a
           -- reader who may not see each learner gets, with noise (ms8.domain.privacy).
           sum(least(completions, %(cap_completions)s * ((period_start + %(step)s::interval)::date - period_start)))
               AS capped_completions,
           sum(least(duration_seconds, %(cap_seconds)s * ((period_start + %(step)s::interval)::date - period_start)))
               AS capped_seconds,
           count(*) FILTER (WHERE scored > 0) AS scored_learners,
           round(sum(score_micros::numeric / scored) FILTER (WHERE scored > 0)) AS learner_score_micros
    FROM ranked
    GROUP BY organization_id, scope_id, period_start, learners, active_n
),
computed AS (
    SELECT p.organization_id, p.trainer_id, d.period_start, d.period_end, p.learners::integer,
           coalesce(s.active_learners, 0)::integer AS active_learners,
           coalesce(s.completions, 0)::bigint AS completions, coalesce(s.assessments, 0)::bigint AS assessments,
           coalesce(s.scored, 0)::bigint AS scored, coalesce(s.score_micros, 0)::bigint AS score_micros,
           coalesce(s.duration_seconds, 0)::bigint AS duration_seconds,
           jsonb_build_object(
               'completions', app_q3(s.completions_q0, s.completions_q1, s.completions_q2, 0),
               'activeDays', app_q3(s.active_days_q0, s.active_days_q1, s.active_days_q2, 0),
               'meanScore', app_q3(s.score_q[1], s.score_q[2], s.score_q[3], NULL),
               'minutes', app_q3(s.minutes_q0, s.minutes_q1, s.minutes_q2, 0)) AS distribution,
           jsonb_build_object(
               'learners', p.learners, 'activeLearners', coalesce(s.active_learners, 0),
               'completions', coalesce(s.capped_completions, 0), 'seconds', coalesce(s.capped_seconds, 0),
               'scoredLearners', coalesce(s.scored_learners, 0),
               'scoreMicros', coalesce(s.learner_score_micros, 0)) AS capped
    FROM populations p
    CROSS JOIN periods d
    LEFT JOIN stats s ON s.organization_id = p.organization_id AND s.scope_id = p.scope_id
                     AND s.period_start = d.period_start
),
written AS (
    INSERT INTO population_rollups AS t
        (organization_id, trainer_id, granularity, period_start, period_end, learners, active_learners,
         completions, assessments, scored, score_micros, duration_seconds, distribution, capped, version)
    SELECT c.organization_id, c.trainer_id, %(granularity)s, c.period_start, c.period_end, c.learners,
           c.active_learners, c.completions, c.assessments, c.scored, c.score_micros, c.duration_seconds,
           c.distribution, c.capped, %(version)s
    FROM computed c
    WHERE NOT EXISTS (
        SELECT 1 FROM population_rollups o
        WHERE o.organization_id = c.organization_id AND o.trainer_id IS NOT DISTINCT FROM c.trainer_id
          AND o.granularity = %(granularity)s AND o.period_start = c.period_start
          AND (o.period_end, o.learners, o.active_learners, o.completions, o.assessments, o.scored,
               o.score_micros, o.duration_seconds, o.distribution, o.capped, o.version)
              = (c.period_end, c.learners, c.active_learners, c.completions, c.assessments, c.scored,
                 c.score_micros, c.duration_seconds, c.distribution, c.capped, %(version)s)
    )
    ORDER BY c.organization_id, c.trainer_id, c.period_start
    ON CONFLICT (organization_id, trainer_id, granularity, period_start) DO UPDATE
    SET period_end = EXCLUDED.period_end, learners = EXCLUDED.learners,
        active_learners = EXCLUDED.active_learners, completions = EXCLUDED.completions,
        assessments = EXCLUDED.assessments, scored = EXCLUDED.scored, score_micros = EXCLUDED.score_micros,
        duration_seconds = EXCLUDED.duration_seconds, distribution = EXCLUDED.distribution,
        capped = EXCLUDED.capped, version = EXCLUDED.version, computed_at = now()
    RETURNING (xmax = 0) AS inserted
),
removed AS (
    DELETE FROM population_rollups t
    WHERE t.granularity = %(granularity)s AND t.period_start >= %(start)s AND t.period_start < %(end)s
      AND NOT EXISTS (
          SELECT 1 FROM computed c
          WHERE c.organization_id = t.organization_id AND c.trainer_id IS NOT DISTINCT FROM t.trainer_id
            AND c.period_start = t.period_start
      )
    RETURNING 1
)
SELECT (SELECT count(*) FILTER (WHERE inserted) FROM written),
       (SELECT count(*) FILTER (WHERE NOT inserted) FROM written),
       (SELECT count(*) FROM removed)
"""

QUARTILES = (0.25, 0.5, 0.75)


def _zero_padded_quartiles(metric: str) -> str:
    """`<metric>_q0..q2`: the quartiles of the metric over the population's learners, the inactive
    ones as zeros (see above); per row of `ranked`, grouped by population and period."""
    zeros = "(learners - active_n)"
    out = []
    for n, p in enumerate(QUARTILES):
        pos = f"({p} * (learners - 1))"
        lo, hi = f"floor({pos})::bigint", f"ceil({pos})::bigint"

        def at(i: str) -> str:
            return (f"(CASE WHEN {i} < {zeros} THEN 0 "
                    f"ELSE max({metric}) FILTER (WHERE r_{metric} = {i} - {zeros} + 1) END)")

        out.append(f"({at(lo)} + ({pos} - {lo}) * ({at(hi)} - {at(lo)})) AS {metric}_q{n}")
    return ", ".join(out)


def _q3(p25: str, median: str, p75: str, empty: str) -> str:
    """{p25, median, p75} rounded to 6 decimals; `empty` for a period without an active learner."""
    return ", ".join(
        f"'{k}', trim_scale(round(coalesce(({v})::numeric, {empty}), 6))"
        for k, v in (("p25", p25), ("median", median), ("p75", p75))
    ).join(("jsonb_build_object(", ")"))


def _statement() -> str:
    import re

    out = _ROLLUP
    for metric in ("completions", "active_days", "minutes"):
        out = out.replace(f"app_zq({metric})", _zero_padded_quartiles(metric))
    return re.sub(r"app_q3\(([^,]+), ([^,]+), ([^,]+), (\w+)\)",
                  lambda m: _q3(m[1], m[2], m[3], m[4]), out)


_STATEMENT = _statement()


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


def period_start(granularity: Granularity, day: date) -> date:
    """The start of the period `day` falls in (UTC days, ISO weeks, calendar months)."""
    if granularity == "daily":
        return day
    if granularity == "weekly":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def rollup(conn: psycopg.Connection, granularity: Granularity, start: date, end: date) -> RollupCounts:
    """Recompute the `granularity` rows of the periods in [start, end) of every organization and
    cohort; write only those that changed. `start` and `end` must be period boundaries."""
    if end <= start:
        return RollupCounts(0, 0, 0)
    unit, step = UNITS[granularity]
    row = conn.execute(_STATEMENT, {
        "granularity": granularity, "unit": unit, "step": step, "start": start, "end": end,
        "learner": LEARNER, "version": ROLLUP_VERSION,
        "cap_completions": privacy.CAP_COMPLETIONS_PER_DAY, "cap_seconds": privacy.CAP_SECONDS_PER_DAY,
    }).fetchone()
    assert row is not None
    return RollupCounts(int(row[0]), int(row[1]), int(row[2]))


def forget_fingerprints_before(conn: psycopg.Connection, cutoff: date) -> int:
    """Drop the old history's fingerprints (app.rollup_inputs) of periods before `cutoff`."""
    return conn.execute("DELETE FROM app.rollup_inputs WHERE period_start < %s", (cutoff,)).rowcount


def delete_before(conn: psycopg.Connection, cutoff: date) -> int:
    """Drop population rollups of periods that start before `cutoff` (past retention)."""
    return conn.execute("DELETE FROM population_rollups WHERE period_start < %s", (cutoff,)).rowcount


def pending_spans(conn: psycopg.Connection) -> tuple[date, date] | None:
    """[first, last] day of every span of learner days deleted since the last run (erasure,
    migration 0009), taken off the list: the run recomputes them. None when there are none."""
    row = conn.execute(
        "WITH taken AS (DELETE FROM app.rollup_pending RETURNING first_day, last_day) "
        "SELECT min(first_day), max(last_day) FROM taken"
    ).fetchone()
    return (row[0], row[1]) if row and row[0] is not None else None
