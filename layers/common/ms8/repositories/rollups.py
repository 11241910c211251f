"""Population rollups: learner_daily_activity -> population_rollups (owner connection,
maintenance transaction), and what the old organization history kept (its fingerprints).

One statement per granularity computes, for every organization and every trainer cohort at
once, each period's population figures from the learners' days, and writes only the rows that
differ from what is stored (docs/ANALYTICS.md defines every figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import psycopg

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
WORK_MEM = "256MB"

# How it computes, and why so:
# - members: the population of each organization (its learners: users holding the learner role)
#   and of each trainer cohort (learners assigned to the trainer), as they are at the run;
#   scope_id is the organization's id for the organization and the trainer's for a cohort, so
#   every join is an equality (hashable), never IS NOT DISTINCT FROM.
# - per_user folds the learners' days into one row per learner and period with activity (a day
#   is its own daily period, read as it is); distinct completed objects need their own pass for
#   weeks and months (an object completed on two days of one week counts once in that week, as
#   in the learner's velocity).
# - Only active learners have rows: an organization of 2,500 learners of whom 100 learn does not
#   make 2,500 rows per period. The distributions are over all the population's learners, so the
#   inactive ones are Z = learners - active zeros placed before the active values (sorted into
#   an array per population and period): the value at padded index i is 0 below Z and else the
#   array's element i - Z + 1, and a quartile interpolates at p x (learners - 1) between the
#   values at its floor and ceiling. This is percentile_cont over the padded values without the
#   padding (tests hold them equal). Where every quartile's position falls among the zeros (fewer
#   than about a quarter of the learners active) nothing is sorted (`needed`, `sorted`). Mean
#   score is over learners with a scored assessment (all of them active): their means sorted
#   once and interpolated as percentile_cont does, without a sort per population and period.
# - The learner-population rows (two per active learner and period: organization and cohort)
#   are never stored: the sums take them in one hashed pass, the scores only the scored ones.
# - Every population gets a row for every period, with zeros when nobody was active.
# - Unchanged rows are filtered out before the INSERT (ON CONFLICT DO UPDATE would lock, and so
#   write, every conflicting row even when its WHERE finds no change); rows of the window the
#   data no longer supports (a cohort that lost its learners) are deleted.
# The periods of [start, end) and the members of every population: an organization's learners
# (scope_id = the organization's id) and each trainer's cohort (scope_id = the trainer's id), of
# every organization or only those in scope.
_PERIODS_AND_MEMBERS = """
WITH periods AS (
    SELECT p::date AS period_start, (p + %(step)s::interval)::date AS period_end
    FROM generate_series(%(start)s::timestamp, %(end)s::timestamp - interval '1 day', %(step)s::interval) AS p
),
members AS (
    SELECT u.organization_id, u.organization_id AS scope_id, NULL::uuid AS trainer_id, u.id AS user_id
    FROM users u
    WHERE %(learner)s = ANY (u.roles) AND (%(everything)s OR u.organization_id = ANY (%(scope_orgs)s::uuid[]))
    UNION ALL
    SELECT u.organization_id, ta.trainer_id, ta.trainer_id, u.id
    FROM trainer_assignments ta JOIN users u ON u.id = ta.learner_id AND u.organization_id = ta.organization_id
    WHERE %(learner)s = ANY (u.roles) AND (%(everything)s OR u.organization_id = ANY (%(scope_orgs)s::uuid[]))
),"""

_ROLLUP = _PERIODS_AND_MEMBERS + """
scope AS (
    SELECT * FROM unnest(%(pair_orgs)s::uuid[], %(pair_starts)s::date[]) AS s(organization_id, period_start)
),
populations AS MATERIALIZED (
    -- With the padded positions of the quartiles: p x (learners - 1), its floor and ceiling.
    SELECT n.*, app_positions
    FROM (SELECT organization_id, scope_id, trainer_id, count(*) AS learners FROM members GROUP BY 1, 2, 3) n
),
per_user AS (
    -- A day is its own period: its row as it is (its objects are already distinct).
    SELECT d.user_id, d.day AS period_start, 1 AS days, 1 AS active_days,
           cardinality(d.completed_objects) AS completions, d.assessments, d.scored, d.score_micros, d.duration_seconds
    FROM learner_daily_activity d
    WHERE %(daily)s AND d.day >= %(start)s AND d.day < %(end)s AND {valid_day}
      AND (%(everything)s OR d.organization_id = ANY (%(scope_orgs)s::uuid[]))
    UNION ALL
    SELECT a.user_id, a.period_start, (a.period_start + %(step)s::interval)::date - a.period_start, a.active_days,
           coalesce(c.completions, 0), a.assessments, a.scored, a.score_micros, a.duration_seconds
    FROM (
        SELECT d.user_id, date_trunc(%(unit)s, d.day::timestamp)::date AS period_start,
               count(*) AS active_days, sum(d.assessments) AS assessments, sum(d.scored) AS scored,
               sum(d.score_micros) AS score_micros, sum(d.duration_seconds) AS duration_seconds
        FROM learner_daily_activity d
        WHERE NOT %(daily)s AND d.day >= %(start)s AND d.day < %(end)s AND {valid_day}
          AND (%(everything)s OR d.organization_id = ANY (%(scope_orgs)s::uuid[]))
        GROUP BY 1, 2
    ) a
    LEFT JOIN (
        -- Distinct objects over the period's days (an object completed on two days counts once).
        SELECT d.user_id, date_trunc(%(unit)s, d.day::timestamp)::date AS period_start,
               count(DISTINCT o) AS completions
        FROM learner_daily_activity d CROSS JOIN LATERAL unnest(d.completed_objects) AS o
        WHERE NOT %(daily)s AND d.day >= %(start)s AND d.day < %(end)s AND d.completions > 0 AND {valid_day}
          AND (%(everything)s OR d.organization_id = ANY (%(scope_orgs)s::uuid[]))
        GROUP BY 1, 2
    ) c ON c.user_id = a.user_id AND c.period_start = a.period_start
),
learners AS MATERIALIZED (
    -- Each active learner's period with what its populations need of it: the figures, minutes,
    -- and the mean score as a ratio (for its quartiles) and in micro-units (summed exactly).
    SELECT a.user_id, a.period_start, a.days, a.active_days, a.completions, a.assessments, a.scored,
           a.score_micros, a.duration_seconds, a.duration_seconds::float8 / 60 AS minutes,
           CASE WHEN a.scored > 0 THEN a.score_micros::float8 / a.scored / 1e6 END AS mean_score,
           CASE WHEN a.scored > 0 THEN a.score_micros::numeric / a.scored END AS mean_micros
    FROM per_user a
),
active AS NOT MATERIALIZED (
    -- Each active learner's period once per population it is in: the organization's (every
    -- learner) and each cohort's (the learner's assignments). Joined to the tables themselves,
    -- not to `members`, so that the planner knows a user id is one user (a CTE has no statistics);
    -- joined anew by each reader below rather than stored (two rows per learner and period).
    SELECT u.organization_id, u.organization_id AS scope_id, a.*
    FROM learners a JOIN users u ON u.id = a.user_id
    WHERE %(learner)s = ANY (u.roles)
    UNION ALL
    SELECT u.organization_id, ta.trainer_id, a.*
    FROM learners a JOIN users u ON u.id = a.user_id
    JOIN trainer_assignments ta ON ta.learner_id = u.id AND ta.organization_id = u.organization_id
    WHERE %(learner)s = ANY (u.roles)
),
stats AS (
    -- The sums: one hashed pass, nothing sorted.
    SELECT x.organization_id, x.scope_id, x.period_start, count(*) AS active_n,
           sum(x.completions) AS completions, sum(x.assessments) AS assessments, sum(x.scored) AS scored,
           sum(x.score_micros) AS score_micros, sum(x.duration_seconds) AS duration_seconds,
           -- Sums where each learner adds a bounded amount (capped per day of the period): what a
           -- reader who may not see each learner gets, with noise (ms8.domain.privacy).
           sum(least(x.completions,
                     %(cap_completions)s * x.days))
               AS capped_completions,
           sum(least(x.duration_seconds,
                     %(cap_seconds)s * x.days))
               AS capped_seconds,
           count(*) FILTER (WHERE x.scored > 0) AS scored_learners,
           round(sum(x.mean_micros)) AS learner_score_micros
    FROM active x
    GROUP BY x.organization_id, x.scope_id, x.period_start
),
needed AS MATERIALIZED (
    SELECT s.organization_id, s.scope_id, s.period_start
    FROM stats s JOIN populations p ON p.organization_id = s.organization_id AND p.scope_id = s.scope_id
    WHERE p.hi_2 >= p.learners - s.active_n
),
sorted AS (
    -- The active learners' values in order, only for the populations and periods where a
    -- quartile reaches them: with fewer active learners than the highest quartile's position
    -- needs (ceil(0.75 x (learners - 1)) < inactive learners), every quartile is one of the
    -- inactive learners' zeros and nothing needs sorting.
    SELECT x.organization_id, x.scope_id, x.period_start,
           array_agg(x.completions ORDER BY x.completions) AS completions_v,
           array_agg(x.active_days ORDER BY x.active_days) AS active_days_v,
           array_agg(x.minutes ORDER BY x.minutes) AS minutes_v
    FROM active x
    WHERE (x.organization_id, x.scope_id, x.period_start)
          IN (SELECT organization_id, scope_id, period_start FROM needed)
    GROUP BY x.organization_id, x.scope_id, x.period_start
),
scores AS (
    -- The scored learners' mean scores in order, per population and period (only the scored
    -- rows are sorted, once: the aggregate reads them presorted); the quartiles interpolate on
    -- them as percentile_cont does.
    SELECT x.organization_id, x.scope_id, x.period_start, array_agg(x.mean_score ORDER BY x.mean_score) AS score_v
    FROM active x
    WHERE x.scored > 0
    GROUP BY x.organization_id, x.scope_id, x.period_start
),
computed AS (
    SELECT p.organization_id, p.trainer_id, d.period_start, d.period_end, p.learners::integer,
           coalesce(s.active_n, 0)::integer AS active_learners,
           coalesce(s.completions, 0)::bigint AS completions, coalesce(s.assessments, 0)::bigint AS assessments,
           coalesce(s.scored, 0)::bigint AS scored, coalesce(s.score_micros, 0)::bigint AS score_micros,
           coalesce(s.duration_seconds, 0)::bigint AS duration_seconds,
           jsonb_build_object(
               'completions', app_unpad(completions),
               'activeDays', app_unpad(active_days),
               'meanScore', app_scores,
               'minutes', app_unpad(minutes)) AS distribution,
           jsonb_build_object(
               'learners', p.learners, 'activeLearners', coalesce(s.active_n, 0),
               'completions', coalesce(s.capped_completions, 0), 'seconds', coalesce(s.capped_seconds, 0),
               'scoredLearners', coalesce(s.scored_learners, 0),
               'scoreMicros', coalesce(s.learner_score_micros, 0)) AS capped
    FROM populations p
    CROSS JOIN periods d
    LEFT JOIN stats s ON s.organization_id = p.organization_id AND s.scope_id = p.scope_id
                     AND s.period_start = d.period_start
    LEFT JOIN sorted v ON v.organization_id = p.organization_id AND v.scope_id = p.scope_id
                      AND v.period_start = d.period_start
    LEFT JOIN scores r ON r.organization_id = p.organization_id AND r.scope_id = p.scope_id
                      AND r.period_start = d.period_start
    WHERE %(everything)s OR (p.organization_id, d.period_start) IN (SELECT organization_id, period_start FROM scope)
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
    RETURNING t.organization_id, t.trainer_id, t.period_start
),
removed AS (
    DELETE FROM population_rollups t
    WHERE t.granularity = %(granularity)s AND t.period_start >= %(start)s AND t.period_start < %(end)s
      AND (%(everything)s
           OR (t.organization_id, t.period_start) IN (SELECT organization_id, period_start FROM scope))
      AND NOT EXISTS (
          SELECT 1 FROM computed c
          WHERE c.organization_id = t.organization_id AND c.trainer_id IS NOT DISTINCT FROM t.trainer_id
            AND c.period_start = t.period_start
      )
    RETURNING 1
),
-- Inserted or updated: every part of the statement reads the table as it was before it (one
-- snapshot), so a written key that was already there is an update. (Not xmax: a row routed into
-- a partition does not carry it.)
counted AS (
    SELECT count(*) FILTER (WHERE NOT EXISTS (
               SELECT 1 FROM population_rollups o
               WHERE o.organization_id = w.organization_id AND o.trainer_id IS NOT DISTINCT FROM w.trainer_id
                 AND o.granularity = %(granularity)s AND o.period_start = w.period_start)) AS inserted,
           count(*) AS written
    FROM written w
)
SELECT (SELECT inserted FROM counted),
       (SELECT written - inserted FROM counted),
       (SELECT count(*) FROM removed)
"""

QUARTILES = (0.25, 0.5, 0.75)


def _positions() -> str:
    """In `populations`: pos_n, lo_n, hi_n of each quartile n over the padded values."""
    return ", ".join(
        f"{q} * (n.learners - 1) AS pos_{i}, floor({q} * (n.learners - 1))::integer AS lo_{i}, "
        f"ceil({q} * (n.learners - 1))::integer AS hi_{i}"
        for i, q in enumerate(QUARTILES)
    )


def _unpadded(metric: str) -> str:
    """In `computed`: {p25, median, p75} of the metric over the population's learners, from the
    sorted values of the active ones (`v.<metric>_v`) and zeros for the others (see above); no
    values (v is null) where every quartile falls on the zeros."""
    zeros = "(p.learners - coalesce(s.active_n, 0))"

    def at(i: str) -> str:
        return f"(CASE WHEN {i} < {zeros} THEN 0 ELSE v.{metric}_v[{i} - {zeros} + 1] END)"

    values = [f"{at(f'p.lo_{i}')} + (p.pos_{i} - p.lo_{i}) * ({at(f'p.hi_{i}')} - {at(f'p.lo_{i}')})"
              for i in range(len(QUARTILES))]
    return _q3(values[0], values[1], values[2], "0")


def _score_quartiles() -> str:
    """In `computed`: {p25, median, p75} of the scored learners' mean scores (`r.score_v`,
    sorted), as percentile_cont interpolates them: at p x (n - 1) between its floor and ceiling,
    first + (p x (n - 1) - floor) x (second - first); null without a scored learner."""
    n = "cardinality(r.score_v)"

    def value(q: float) -> str:
        pos = f"({q}::float8 * ({n} - 1))"
        lo, hi = f"floor({pos})::integer", f"ceil({pos})::integer"
        return (f"(r.score_v[{lo} + 1] + ({pos} - floor({pos})) * "
                f"(r.score_v[{hi} + 1] - r.score_v[{lo} + 1]))")

    p25, median, p75 = (value(q) for q in QUARTILES)
    return _q3(p25, median, p75, "NULL")


def _q3(p25: str, median: str, p75: str, empty: str) -> str:
    """{p25, median, p75} rounded to 6 decimals; `empty` for a period without an active learner."""
    return ", ".join(
        f"'{k}', trim_scale(round(coalesce(({v})::numeric, {empty}), 6))"
        for k, v in (("p25", p25), ("median", median), ("p75", p75))
    ).join(("jsonb_build_object(", ")"))


# A learner day whose figures cannot come from its events (written by hand, or by a bug): every
# sum a rollup takes is bounded by the day's events, so no organization's data can overflow the
# statement that rolls up every organization. Such days are left out and reported (invalid_days).
# Written as one expression with statistics of its own (migration 0013, the same text): five
# column-to-column comparisons would each be guessed true for a third of the days, and the plans
# made for 1 day in 250.
_VALID_DAY = ("coalesce((d.completions <= d.events AND d.assessments <= d.events AND d.scored <= d.assessments "
              "AND d.score_micros <= d.scored::bigint * 1000000 AND d.duration_seconds <= d.events::bigint * 86400), "
              "false)")


def _statement() -> str:
    out = _ROLLUP.replace("app_positions", _positions()).replace("{valid_day}", _VALID_DAY)
    for metric in ("completions", "active_days", "minutes"):
        out = out.replace(f"app_unpad({metric})", _unpadded(metric))
    return out.replace("app_scores", _score_quartiles())


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


def _params(granularity: Granularity, start: date, end: date,
            scope: Sequence[tuple[UUID, date]] | None) -> dict[str, Any]:
    from ms8.domain import privacy  # the job's side only: readers of this module need not load it

    unit, step = UNITS[granularity]
    return {
        "granularity": granularity, "unit": unit, "step": step, "start": start, "end": end,
        "learner": LEARNER, "version": ROLLUP_VERSION, "everything": scope is None, "daily": granularity == "daily",
        "cap_completions": privacy.CAP_COMPLETIONS_PER_DAY, "cap_seconds": privacy.CAP_SECONDS_PER_DAY,
        "scope_orgs": sorted({o for o, _ in scope or ()}),
        "pair_orgs": [o for o, _ in scope or ()], "pair_starts": [s for _, s in scope or ()],
    }


def rollup(
    conn: psycopg.Connection, granularity: Granularity, start: date, end: date,
    scope: Sequence[tuple[UUID, date]] | None = None,
) -> RollupCounts:
    """Recompute the `granularity` rows of the periods in [start, end) of every organization and
    cohort, or only of the (organization, period start) pairs in `scope`; write only those that
    changed. `start` and `end` must be period boundaries."""
    if scope is not None:
        if not scope:
            return RollupCounts(0, 0, 0)
        start = max(start, min(s for _, s in scope))
        end = min(end, next_period(granularity, max(s for _, s in scope)))
    if end <= start:
        return RollupCounts(0, 0, 0)
    # The sorts and hash tables of a backfill (over a million learner-population rows) in memory
    # rather than spilled to disk; for this transaction only.
    conn.execute("SELECT set_config('work_mem', %s, true)", (WORK_MEM,))
    row = conn.execute(_STATEMENT, _params(granularity, start, end, scope)).fetchone()
    assert row is not None
    return RollupCounts(int(row[0]), int(row[1]), int(row[2]))


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What an organization's period is computed from now: how many learner days and
    memberships, and their digest (None, None: the organization has no learners any more)."""

    organization_id: UUID
    period_start: date
    inputs: int | None
    digest: int | None


# One pass over the learner days of every granularity's window and over the memberships, per
# organization and UTC day first (a few thousand rows), then per organization and period of each
# granularity, compared with what each period was last computed from. The digest is an XOR of
# hashes (order free, so a period's is the XOR of its days') of each membership and of each day's
# figures; any change of a day, a role, an assignment or the rollup version makes the period differ.
_CHANGED = """
WITH spans AS (
    SELECT * FROM unnest(%(grans)s::text[], %(units)s::text[], %(steps)s::interval[], %(starts)s::date[],
                         %(ends)s::date[]) AS s(granularity, unit, step, first_start, end_date)
),
periods AS (
    SELECT s.granularity, p::date AS period_start
    FROM spans s CROSS JOIN LATERAL generate_series(s.first_start::timestamp, s.end_date::timestamp - interval '1 day',
                                                    s.step) AS p
),
members AS (
    SELECT u.organization_id, u.organization_id AS scope_id, u.id AS user_id
    FROM users u WHERE %(learner)s = ANY (u.roles)
    UNION ALL
    SELECT u.organization_id, ta.trainer_id, u.id
    FROM trainer_assignments ta JOIN users u ON u.id = ta.learner_id AND u.organization_id = ta.organization_id
    WHERE %(learner)s = ANY (u.roles)
),
member_prints AS (
    SELECT organization_id, count(*) AS n,
           bit_xor(uuid_hash_extended(user_id, 0) # uuid_hash_extended(scope_id, 1)) AS digest
    FROM members GROUP BY 1
),
per_day AS (
    SELECT d.organization_id, d.day, count(*) AS n,
           -- Days only grow (ingest adds events), so their counts and sums tell any change apart.
           bit_xor(uuid_hash_extended(d.user_id, d.day - date '2000-01-01')
                   # hashint8extended(d.events::bigint << 32 | d.completions, d.assessments::bigint << 32 | d.scored)
                   # hashint8extended(d.score_micros, d.duration_seconds)) AS digest
    FROM learner_daily_activity d
    WHERE d.day >= %(first)s AND d.day < %(last)s
    GROUP BY 1, 2
),
day_prints AS (
    SELECT s.granularity, d.organization_id, date_trunc(s.unit, d.day::timestamp)::date AS period_start,
           sum(d.n) AS n, bit_xor(d.digest) AS digest
    FROM per_day d JOIN spans s ON d.day >= s.first_start AND d.day < s.end_date
    GROUP BY 1, 2, 3
),
now_inputs AS (
    SELECT p.granularity, m.organization_id, p.period_start, m.n + coalesce(d.n, 0) AS inputs,
           m.digest # coalesce(d.digest, 0) AS digest
    FROM member_prints m CROSS JOIN periods p
    LEFT JOIN day_prints d ON d.granularity = p.granularity AND d.organization_id = m.organization_id
                          AND d.period_start = p.period_start
),
last_inputs AS (
    SELECT r.granularity, r.organization_id, r.period_start, r.inputs, r.digest, r.version
    FROM app.population_rollup_inputs r
    JOIN spans s ON s.granularity = r.granularity AND r.period_start >= s.first_start AND r.period_start < s.end_date
)
SELECT coalesce(n.granularity, l.granularity), coalesce(n.organization_id, l.organization_id),
       coalesce(n.period_start, l.period_start), n.inputs, n.digest
FROM now_inputs n
FULL JOIN last_inputs l ON l.granularity = n.granularity AND l.organization_id = n.organization_id
                       AND l.period_start = n.period_start
WHERE n.inputs IS DISTINCT FROM l.inputs OR n.digest IS DISTINCT FROM l.digest
   OR l.version IS DISTINCT FROM %(version)s
ORDER BY 1, 2, 3
"""


def changed_periods(
    conn: psycopg.Connection, spans: Mapping[Granularity, tuple[date, date]],
) -> dict[Granularity, list[Fingerprint]]:
    """Per granularity, the (organization, period) pairs of its span [start, end) whose inputs
    differ from those of their last rollup (or that were never rolled up), with their current
    fingerprints: one pass over the days and memberships for every granularity."""
    grans = list(spans)
    rows = conn.execute(_CHANGED, {
        "grans": grans, "units": [UNITS[g][0] for g in grans], "steps": [UNITS[g][1] for g in grans],
        "starts": [spans[g][0] for g in grans], "ends": [spans[g][1] for g in grans],
        "first": min(s for s, _ in spans.values()), "last": max(e for _, e in spans.values()),
        "learner": LEARNER, "version": ROLLUP_VERSION,
    }).fetchall()
    out: dict[Granularity, list[Fingerprint]] = {g: [] for g in grans}
    for granularity, org, start, inputs, digest in rows:
        out[granularity].append(Fingerprint(org, start, inputs, digest))
    return out


_SAVE = """
WITH prints AS (
    SELECT * FROM unnest(%(orgs)s::uuid[], %(starts)s::date[], %(inputs)s::bigint[], %(digests)s::bigint[])
        AS p(organization_id, period_start, inputs, digest)
),
gone AS (
    DELETE FROM app.population_rollup_inputs r
    USING prints p
    WHERE p.inputs IS NULL AND r.organization_id = p.organization_id
      AND r.granularity = %(granularity)s AND r.period_start = p.period_start
)
INSERT INTO app.population_rollup_inputs AS r (organization_id, granularity, period_start, inputs, digest, version)
SELECT organization_id, %(granularity)s, period_start, inputs, digest, %(version)s
FROM prints WHERE inputs IS NOT NULL
ORDER BY organization_id, period_start
ON CONFLICT (organization_id, granularity, period_start) DO UPDATE
SET inputs = EXCLUDED.inputs, digest = EXCLUDED.digest, version = EXCLUDED.version, computed_at = now()
"""


def save_fingerprints(conn: psycopg.Connection, granularity: Granularity, prints: Sequence[Fingerprint]) -> None:
    """Record what these periods were just rolled up from (and forget those without learners)."""
    if prints:
        conn.execute(_SAVE, {
            "granularity": granularity, "version": ROLLUP_VERSION,
            "orgs": [p.organization_id for p in prints], "starts": [p.period_start for p in prints],
            "inputs": [p.inputs for p in prints], "digests": [p.digest for p in prints],
        })


def forget_fingerprints_before(conn: psycopg.Connection, cutoff: date) -> int:
    """Drop the input fingerprints of periods before `cutoff` (past retention): the population
    rollups' (app.population_rollup_inputs) and the old history's (app.rollup_inputs)."""
    return sum(
        conn.execute(f"DELETE FROM app.{table} WHERE period_start < %s", (cutoff,)).rowcount
        for table in ("population_rollup_inputs", "rollup_inputs")
    )


def invalid_days(conn: psycopg.Connection, start: date, end: date) -> dict[str, int]:
    """Learner days in [start, end) that the rollups leave out (see _VALID_DAY), per organization."""
    rows = conn.execute(
        f"SELECT d.organization_id::text, count(*) FROM learner_daily_activity d "
        f"WHERE d.day >= %s AND d.day < %s AND NOT {_VALID_DAY} GROUP BY 1 ORDER BY 1",
        (start, end),
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def pending_spans(conn: psycopg.Connection) -> tuple[date, date] | None:
    """[first, last] day of every span of learner days deleted since the last run (erasure,
    migration 0009), taken off the list: the run recomputes them. None when there are none."""
    row = conn.execute(
        "WITH taken AS (DELETE FROM app.rollup_pending RETURNING first_day, last_day) "
        "SELECT min(first_day), max(last_day) FROM taken"
    ).fetchone()
    return (row[0], row[1]) if row and row[0] is not None else None
