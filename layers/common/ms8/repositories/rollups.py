"""Population rollups: learner_daily_activity -> population_rollups (owner connection,
maintenance transaction), and what the old organization history kept (its fingerprints).

One statement computes, for every organization and every trainer cohort at once and for every
granularity a run covers, each period's population figures from the learners' days, and writes
only the rows that differ from what is stored (docs/ANALYTICS.md defines every figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import psycopg

from ms8.domain.vocabulary import LEARNER, Granularity

# date_trunc unit and period length per granularity (the fingerprints' periods; date_trunc('week')
# starts on ISO Mondays).
UNITS: dict[Granularity, tuple[str, str]] = {
    "daily": ("day", "1 day"),
    "weekly": ("week", "7 days"),
    "monthly": ("month", "1 month"),
}
# Stored with each row: bump it when a figure's definition changes, and the next run rewrites
# every row of its window. 2: population rollups from learner days (1 was the per-type history
# of active learners in aggregated_analytics).
ROLLUP_VERSION = 2
WORK_MEM = "256MB"  # per connection: the job's shards each have their own (docs/SCALING.md)
# Hash tables may take this many times WORK_MEM before spilling to disk (PostgreSQL's default: 2).
# The limit that makes them spill here is on groups, not memory: the planner budgets ~8 kB per
# group for each aggregate with an in-memory state (the per-signature sums have three: the
# mean-score numeric sum and two value arrays) and caps the groups a hash table holds at the
# hash memory over that budget. At 2, the daily sums of a 100-organization backfill (45,000
# groups in 42 MB) went to disk in five batches; at 8 they stay in memory. Here, where the temp
# files never leave the page cache, the statement's CPU moved within the noise (medians of eight
# alternating runs: 4.77 s at 2, 4.56 s at 8); the fingerprints' pass, which ran with the role's
# 128 MB before, takes ~20 % less. What a hash table really holds is what is counted against the
# limit, so real memory grows only with real groups.
HASH_MEM_MULTIPLIER = "8"
# A rollup transaction waits at most this long for a lock. The sharded job's own transaction
# holds its locks while it waits for the other shards' transactions: a lock request queued
# between them (a partition's DDL) would otherwise stall all of them, with no cycle PostgreSQL
# could detect; a shard that times out fails the run instead.
LOCK_TIMEOUT = "30s"

# How it computes, and why so (one statement for every granularity a run covers):
# - populations: each organization's learners (users holding the learner role; scope_id = the
#   organization's id) and each trainer's cohort (the learners assigned to the trainer; scope_id =
#   the trainer's id), as they are at the run, each numbered (pop): every key the statement
#   groups, sorts or joins on afterwards is integers and a date (pop or sig, g, period_start),
#   not two uuids and a text (about a third less time in the sums and the sorts). Their sizes
#   are counted from all the memberships.
# - days: the window's learner days, narrow, read once for every granularity.
# - signatures: each learner with a day in the window (only those: 10,000 active learners of
#   250,000 do not make 500,000 membership rows) with the sorted list of the populations it is
#   in, numbered: learners with the same populations (in the bench, every learner of one
#   cohort) share a signature, so the sums are taken once per learner and period and added up
#   per population from a few thousand signature rows, instead of once per learner, period and
#   population (the organization's and its cohorts' share the work of their learners).
# - learners' periods: a day is its own daily period, as it is (read straight from the days);
#   each learner's weeks and months are two grouping sets of one hashed pass over the days
#   (cheaper than folding the days per (week, month) first and those again); their distinct
#   completed objects (an object completed on two days of one week counts once in that week, as
#   in the learner's velocity) are counted over the objects of the days with one, in order.
# - by_signature: one aggregate pass over the learners' periods per signature takes every sum
#   and gathers, as arrays, the values the quartiles need: every scored learner's mean score,
#   and (one array of three columns) the completions, active days and minutes of the learners
#   of `valued` signatures only. stats: per population, its signatures' sums added up and their
#   arrays concatenated (app.array_cat_agg), then sorted (app.array_sorted; migration 0018). No
#   learner-population rows are made or sorted (that sort of 1.2 million rows was a second of
#   the bench's run).
# - Only active learners have rows: an organization of 2,500 learners of whom 100 learn does not
#   make 2,500 rows per period. The distributions are over all the population's learners, so the
#   inactive ones are Z = learners - active zeros placed before the active values (sorted into
#   an array per population and period): the value at padded index i is 0 below Z and else the
#   array's element i - Z + 1, and a quartile interpolates at p x (learners - 1) between the
#   values at its floor and ceiling. This is percentile_cont over the padded values without the
#   padding (tests hold them equal). Where every quartile's position falls among the zeros (fewer
#   than about a quarter of the learners active) nothing is sorted and the figure is a constant;
#   the values are only gathered for populations whose active learners over the whole window
#   could reach a quartile (`valued`: a period never has more), and a signature's when one of
#   its populations is, so a population that needs them has them from all its signatures.
#   Mean score is over learners with a scored assessment (all of them active), interpolated as
#   percentile_cont does.
# - Every population gets a row for every period, with zeros when nobody was active.
# - Unchanged rows are filtered out before the write (ON CONFLICT DO UPDATE would lock, and so
#   write, every conflicting row even when its WHERE finds no change), in one hashed join with
#   the stored rows that also tells inserts from updates (was an index probe per written row,
#   quadratic in the rows of a period): new rows by a plain INSERT (no speculative insertion
#   per row; runs of the job are serialised by its lock), changed ones updated by their row id.
#   Rows of the window the data no longer supports (a cohort that lost its learners) are deleted.
# - The planner cannot estimate the row counts of these steps (hundreds of thousands guessed for
#   tens of thousands, billions for the computed rows): nothing hashes the computed rows.
_ROLLUP = """
WITH spans AS (
    SELECT * FROM unnest(%(gs)s::integer[], %(grans)s::text[], %(steps)s::interval[], %(starts)s::date[],
                         %(ends)s::date[])
        AS s(g, granularity, step, first_start, end_date)
),
periods AS (
    SELECT s.g, s.granularity, p::date AS period_start, (p + s.step)::date AS period_end
    FROM spans s
    CROSS JOIN LATERAL generate_series(s.first_start::timestamp, s.end_date::timestamp - interval '1 day', s.step) AS p
),
scope AS (
    SELECT * FROM unnest(%(pair_gs)s::integer[], %(pair_orgs)s::uuid[], %(pair_starts)s::date[])
        AS s(g, organization_id, period_start)
),
populations AS MATERIALIZED (
    -- With the padded positions of the quartiles: p x (learners - 1), its floor and ceiling.
    SELECT (row_number() OVER ())::integer AS pop, n.*, app_positions
    FROM (
        SELECT u.organization_id, u.organization_id AS scope_id, NULL::uuid AS trainer_id, count(*) AS learners
        FROM users u
        WHERE %(learner)s = ANY (u.roles) AND (%(everything)s OR u.organization_id = ANY (%(scope_orgs)s::uuid[]))
        GROUP BY u.organization_id
        UNION ALL
        -- An assignment's learner is a user of its organization (its foreign key): only the role
        -- is checked, against the few users without the learner role (not a join of every
        -- assignment with every user).
        SELECT ta.organization_id, ta.trainer_id, ta.trainer_id, count(*)
        FROM trainer_assignments ta
        WHERE (%(everything)s OR ta.organization_id = ANY (%(scope_orgs)s::uuid[]))
          AND NOT EXISTS (SELECT 1 FROM users u
                          WHERE u.id = ta.learner_id AND (%(learner)s = ANY (u.roles)) IS NOT TRUE)
        GROUP BY ta.organization_id, ta.trainer_id
    ) n
),
days AS MATERIALIZED (
    SELECT d.user_id, d.day, cardinality(d.completed_objects) AS completions,
           CASE WHEN d.completions > 0 THEN d.completed_objects END AS objects,
           d.assessments, d.scored, d.score_micros, d.duration_seconds
    FROM learner_daily_activity d
    WHERE d.day >= %(first)s AND d.day < %(last)s AND {valid_day}
      AND (%(everything)s OR d.organization_id = ANY (%(scope_orgs)s::uuid[]))
),
active AS MATERIALIZED (
    SELECT DISTINCT d.user_id FROM days d
),
signatures AS MATERIALIZED (
    -- Each learner with a day in the window and the populations it is in (its signature, sorted:
    -- learners with the same populations share it), from its organization and its trainers.
    SELECT s.user_id, s.pops, (dense_rank() OVER (ORDER BY s.pops))::integer AS sig
    FROM (
    SELECT m.user_id, array_agg(m.pop ORDER BY m.pop) AS pops
    FROM (
        SELECT u.id AS user_id, p.pop
        FROM active a JOIN users u ON u.id = a.user_id
        JOIN populations p ON p.organization_id = u.organization_id AND p.scope_id = u.organization_id
        WHERE %(learner)s = ANY (u.roles)
        UNION ALL
        SELECT u.id, p.pop
        FROM active a JOIN trainer_assignments ta ON ta.learner_id = a.user_id
        JOIN users u ON u.id = ta.learner_id AND u.organization_id = ta.organization_id
        JOIN populations p ON p.organization_id = ta.organization_id AND p.scope_id = ta.trainer_id
        WHERE %(learner)s = ANY (u.roles)
    ) m
    GROUP BY m.user_id
    ) s
),
signature_populations AS MATERIALIZED (
    SELECT DISTINCT sig, unnest(pops) AS pop FROM signatures
),
valued AS MATERIALIZED (
    -- The signatures whose learners' values are collected for the distributions: those of a
    -- population whose active learners over the whole window could reach a quartile (see
    -- `needed` below; a period never has more active learners than the window).
    SELECT DISTINCT m.sig
    FROM signature_populations m
    JOIN (SELECT m.pop, count(*) AS active
          FROM signatures s JOIN signature_populations m ON m.sig = s.sig GROUP BY m.pop) a ON a.pop = m.pop
    JOIN populations p ON p.pop = m.pop
    WHERE p.hi_2 >= p.learners - a.active
),
learner_signatures AS MATERIALIZED (
    SELECT s.user_id, s.sig, s.sig IN (SELECT sig FROM valued) AS valued FROM signatures s
),
period_learners AS (
    -- Each active learner's weeks and months (the spans start and end on period boundaries; per
    -- learner and period the sums fit in bigint, every day being valid). A day is its own daily
    -- period, as it is (read straight from the days).
    SELECT w.g, w.user_id, w.period_start, w.period_end - w.period_start AS days, w.active_days,
           coalesce(c.completions, 0)::integer AS completions, w.assessments, w.scored, w.score_micros,
           w.duration_seconds
    FROM (
        -- Weeks and months in one hashed pass over the days, a grouping set each (cheaper than
        -- folding the days per (week, month) first and those again).
        SELECT CASE WHEN grouping(d.week) = 0 THEN 1 ELSE 2 END AS g, d.user_id,
               coalesce(d.week, d.month) AS period_start,
               coalesce(d.week + 7, (d.month + interval '1 month')::date) AS period_end,
               count(*)::integer AS active_days, sum(d.assessments)::bigint AS assessments,
               sum(d.scored)::bigint AS scored, app.sum_bigint(d.score_micros) AS score_micros,
               app.sum_bigint(d.duration_seconds) AS duration_seconds
        FROM (
            SELECT d.*, {week_of_day} AS week, date_trunc('month', d.day::timestamp)::date AS month
            FROM days d
            WHERE (d.day >= %(weekly_start)s AND d.day < %(weekly_end)s)
               OR (d.day >= %(monthly_start)s AND d.day < %(monthly_end)s)
        ) d
        GROUP BY GROUPING SETS ((d.user_id, d.week), (d.user_id, d.month))
    ) w
    LEFT JOIN (
        -- Distinct objects over the period's days (an object completed on two days counts
        -- once), counted over each learner's objects of the period in order.
        SELECT 1 AS g, d.user_id, d.period_start, count(DISTINCT d.object_id) AS completions
        FROM (SELECT d.user_id, {week_of_day} AS period_start, unnest(d.objects) AS object_id
              FROM days d
              WHERE d.objects IS NOT NULL AND d.day >= %(weekly_start)s AND d.day < %(weekly_end)s) d
        GROUP BY d.user_id, d.period_start
        UNION ALL
        SELECT 2, d.user_id, d.period_start, count(DISTINCT d.object_id)
        FROM (SELECT d.user_id, date_trunc('month', d.day::timestamp)::date AS period_start,
                     unnest(d.objects) AS object_id
              FROM days d
              WHERE d.objects IS NOT NULL AND d.day >= %(monthly_start)s AND d.day < %(monthly_end)s) d
        GROUP BY d.user_id, d.period_start
    ) c ON c.g = w.g AND c.user_id = w.user_id AND c.period_start = w.period_start
    WHERE CASE w.g WHEN 1 THEN w.period_start >= %(weekly_start)s AND w.period_start < %(weekly_end)s
                   ELSE w.period_start >= %(monthly_start)s AND w.period_start < %(monthly_end)s END
),
by_signature AS MATERIALIZED (
    -- The sums per signature first (one hashed pass over the learners' periods, each once),
    -- then per population from the signatures' sums: the organization's and its cohorts' share
    -- the work of their learners. The values the distributions sort are collected here too, as
    -- arrays: the mean scores of every signature, the other values of the valued ones. The
    -- daily periods straight from the days (a day: one day long, one active day), the weeks and
    -- months from the learners' periods.
    SELECT m.sig, 0 AS g, x.day AS period_start, app_signature_sums(daily)
    FROM days x JOIN learner_signatures m ON m.user_id = x.user_id
    WHERE x.day >= %(daily_start)s AND x.day < %(daily_end)s
    GROUP BY m.sig, x.day
    UNION ALL
    SELECT m.sig, x.g, x.period_start, app_signature_sums(periods)
    FROM period_learners x JOIN learner_signatures m ON m.user_id = x.user_id
    GROUP BY m.sig, x.g, x.period_start
),
stats AS MATERIALIZED (
    -- Per population and period: the sums of its signatures, and their values concatenated
    -- and sorted (the other values only where a quartile reaches the active learners: with
    -- fewer active learners than the highest quartile's position needs, ceil(0.75 x
    -- (learners - 1)) < inactive learners, every quartile is one of the inactive learners'
    -- zeros and nothing needs sorting).
    SELECT x.*, app.array_sorted(x.score_v) AS scores, cardinality(x.score_v) AS scored_learners,
           CASE WHEN p.hi_2 >= p.learners - x.active_n THEN ARRAY(
               SELECT x.values_v[i][1]::integer FROM generate_subscripts(x.values_v, 1) i ORDER BY 1)
           END AS completions_s,
           CASE WHEN p.hi_2 >= p.learners - x.active_n THEN ARRAY(
               SELECT x.values_v[i][2]::integer FROM generate_subscripts(x.values_v, 1) i ORDER BY 1)
           END AS active_days_s,
           CASE WHEN p.hi_2 >= p.learners - x.active_n THEN ARRAY(
               SELECT x.values_v[i][3] FROM generate_subscripts(x.values_v, 1) i ORDER BY 1)
           END AS minutes_s
    FROM populations p JOIN (
        SELECT m.pop, x.g, x.period_start, app.sum_bigint(x.active_n) AS active_n,
               app.sum_bigint(x.completions) AS completions, app.sum_bigint(x.assessments) AS assessments,
               app.sum_bigint(x.scored) AS scored, app.sum_bigint(x.score_micros) AS score_micros,
               app.sum_bigint(x.duration_seconds) AS duration_seconds,
               app.sum_bigint(x.capped_completions) AS capped_completions,
               app.sum_bigint(x.capped_seconds) AS capped_seconds,
               round(coalesce(app.sum_bigint(x.single_score_micros), 0) + coalesce(sum(x.mean_score_micros), 0))
                   AS learner_score_micros,
               app.array_cat_agg(x.score_v) AS score_v, app.array_cat_agg(x.values_v) AS values_v
        FROM by_signature x JOIN signature_populations m ON m.sig = x.sig
        GROUP BY m.pop, x.g, x.period_start
    ) x ON x.pop = p.pop
),
computed AS (
    SELECT p.organization_id, p.scope_id, p.trainer_id, d.g, d.granularity, d.period_start, d.period_end,
           p.learners::integer,
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
    LEFT JOIN stats s ON s.pop = p.pop AND s.g = d.g AND s.period_start = d.period_start
    WHERE %(everything)s
       OR (d.g, p.organization_id, d.period_start) IN (SELECT g, organization_id, period_start FROM scope)
),
changed AS MATERIALIZED (
    -- The rows that differ from what is stored or are not stored yet (existed: an update, of the
    -- stored row with that tableoid and ctid).
    SELECT c.*, o.organization_id IS NOT NULL AS existed, o.tableoid AS stored_table, o.ctid AS stored_row
    FROM computed c
    LEFT JOIN (
        SELECT o.*, o.tableoid, o.ctid, coalesce(o.trainer_id, o.organization_id) AS scope_id
        FROM population_rollups o JOIN spans s ON o.granularity = s.granularity
             AND o.period_start >= s.first_start AND o.period_start < s.end_date
    ) o ON o.organization_id = c.organization_id AND o.scope_id = c.scope_id
       AND o.granularity = c.granularity AND o.period_start = c.period_start
    WHERE o.organization_id IS NULL
       OR (o.period_end, o.learners, o.active_learners, o.completions, o.assessments, o.scored,
           o.score_micros, o.duration_seconds, o.distribution, o.capped, o.version)
          IS DISTINCT FROM (c.period_end, c.learners, c.active_learners, c.completions, c.assessments, c.scored,
                            c.score_micros, c.duration_seconds, c.distribution, c.capped, %(version)s)
),
inserted AS (
    -- New rows by a plain INSERT (an ON CONFLICT insert costs a speculative insertion per row);
    -- the rollup job's lock keeps a second run from writing the same rows meanwhile.
    INSERT INTO population_rollups AS t
        (organization_id, trainer_id, granularity, period_start, period_end, learners, active_learners,
         completions, assessments, scored, score_micros, duration_seconds, distribution, capped, version)
    SELECT c.organization_id, c.trainer_id, c.granularity, c.period_start, c.period_end, c.learners,
           c.active_learners, c.completions, c.assessments, c.scored, c.score_micros, c.duration_seconds,
           c.distribution, c.capped, %(version)s
    FROM changed c
    WHERE NOT c.existed
    ORDER BY c.organization_id, c.trainer_id, c.granularity, c.period_start
    RETURNING t.granularity
),
updated AS (
    -- Rows that differ, updated in place: the very row the comparison read.
    UPDATE population_rollups t
    SET period_end = c.period_end, learners = c.learners, active_learners = c.active_learners,
        completions = c.completions, assessments = c.assessments, scored = c.scored,
        score_micros = c.score_micros, duration_seconds = c.duration_seconds, distribution = c.distribution,
        capped = c.capped, version = %(version)s, computed_at = now()
    FROM changed c
    WHERE c.existed AND t.tableoid = c.stored_table AND t.ctid = c.stored_row
    RETURNING t.granularity
),
removed AS (
    DELETE FROM population_rollups t
    USING spans s
    WHERE t.granularity = s.granularity AND t.period_start >= s.first_start AND t.period_start < s.end_date
      AND (%(everything)s
           OR (s.g, t.organization_id, t.period_start) IN (SELECT g, organization_id, period_start FROM scope))
      -- The statement computes a row for every population and period of the window (in scope):
      -- a stored row without one is of a population gone or of no period. Tested against the
      -- few populations and periods, not the computed rows (whose count the planner cannot
      -- estimate: a hash of billions of guessed rows costs more than the statement).
      AND NOT (EXISTS (SELECT 1 FROM populations p
                       WHERE p.organization_id = t.organization_id
                         AND p.scope_id = coalesce(t.trainer_id, t.organization_id))
               AND EXISTS (SELECT 1 FROM periods d
                           WHERE d.granularity = t.granularity AND d.period_start = t.period_start))
    RETURNING t.granularity
)
-- Per granularity: inserted, updated, deleted (every part of the statement reads the table as it
-- was before it, one snapshot).
SELECT s.granularity,
       (SELECT count(*) FROM inserted i WHERE i.granularity = s.granularity),
       (SELECT count(*) FROM updated u WHERE u.granularity = s.granularity),
       (SELECT count(*) FROM removed r WHERE r.granularity = s.granularity)
FROM spans s
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
        return f"(CASE WHEN {i} < {zeros} THEN 0 ELSE s.{metric}_s[{i} - {zeros} + 1] END)"

    values = [f"{at(f'p.lo_{i}')} + (p.pos_{i} - p.lo_{i}) * ({at(f'p.hi_{i}')} - {at(f'p.lo_{i}')})"
              for i in range(len(QUARTILES))]
    # Without sorted values every quartile is a zero: the constant, not three conversions.
    return f"CASE WHEN s.{metric}_s IS NULL THEN {_ZEROS} ELSE {_q3(values[0], values[1], values[2], '0')} END"


def _score_quartiles() -> str:
    """In `computed`: {p25, median, p75} of the scored learners' mean scores (`r.score_v`,
    sorted), as percentile_cont interpolates them: at p x (n - 1) between its floor and ceiling,
    first + (p x (n - 1) - floor) x (second - first); null without a scored learner."""
    n = "cardinality(s.scores)"

    def value(q: float) -> str:
        pos = f"({q}::float8 * ({n} - 1))"
        lo, hi = f"floor({pos})::integer", f"ceil({pos})::integer"
        return (f"(s.scores[{lo} + 1] + ({pos} - floor({pos})) * "
                f"(s.scores[{hi} + 1] - s.scores[{lo} + 1]))")

    p25, median, p75 = (value(q) for q in QUARTILES)
    return f"CASE WHEN s.scores IS NULL THEN {_NULLS} ELSE {_q3(p25, median, p75, 'NULL')} END"


_ZEROS = """'{"p25": 0, "median": 0, "p75": 0}'::jsonb"""
_NULLS = """'{"p25": null, "median": null, "p75": null}'::jsonb"""


def _q3(p25: str, median: str, p75: str, empty: str) -> str:
    """{p25, median, p75} rounded to 6 decimals; `empty` for a period without an active learner."""
    return ", ".join(
        f"'{k}', trim_scale(round(coalesce(({v})::numeric, {empty}), 6))"
        for k, v in (("p25", p25), ("median", median), ("p75", p75))
    ).join(("jsonb_build_object(", ")"))


# A learner day whose figures cannot come from its events (written by hand, or by a bug): every
# sum a rollup takes is bounded by the day's events, so no organization's data can overflow the
# statement that rolls up every organization. Such days are left out and reported (changed_periods).
# Written as one expression with statistics of its own (migration 0013, the same text): five
# column-to-column comparisons would each be guessed true for a third of the days, and the plans
# made for 1 day in 250.
_VALID_DAY = ("coalesce((d.completions <= d.events AND d.assessments <= d.events AND d.scored <= d.assessments "
              "AND d.score_micros <= d.scored::bigint * 1000000 AND d.duration_seconds <= d.events::bigint * 86400), "
              "false)")


# The ISO week of the day `d.day`: the Monday on or before it (2000-01-03 was a Monday); integer
# arithmetic on the date, cheaper per day than date_trunc on a timestamp.
_WEEK_OF_DAY = "d.day - ((d.day - date '2000-01-03') %% 7 + 7) %% 7"


def _signature_sums(days: str, active_days: str) -> str:
    """In `by_signature`: the sums and values of a signature's learners' periods `x` (columns
    completions, assessments, scored, score_micros, duration_seconds), each `days` long with
    `active_days` active days."""
    capped = "" if days == "1" else f" * {days}"
    return f"""count(*) AS active_n,
           sum(x.completions) AS completions, app.sum_bigint(x.assessments) AS assessments,
           app.sum_bigint(x.scored) AS scored, app.sum_bigint(x.score_micros) AS score_micros,
           app.sum_bigint(x.duration_seconds) AS duration_seconds,
           -- Sums where each learner adds a bounded amount (capped per day of the period): what a
           -- reader who may not see each learner gets, with noise (ms8.domain.privacy).
           sum(least(x.completions, %(cap_completions)s{capped})) AS capped_completions,
           app.sum_bigint(least(x.duration_seconds, %(cap_seconds)s{capped})) AS capped_seconds,
           -- The learners' mean scores in micro-units, summed exactly: a learner with one scored
           -- assessment (most) adds its integer score, only the others a numeric quotient.
           app.sum_bigint(x.score_micros) FILTER (WHERE x.scored = 1) AS single_score_micros,
           sum(x.score_micros::numeric / x.scored) FILTER (WHERE x.scored > 1) AS mean_score_micros,
           array_agg(x.score_micros::float8 / x.scored / 1e6) FILTER (WHERE x.scored > 0) AS score_v,
           -- The valued learners' completions, active days and minutes, a row each (one array
           -- of three columns: a third of the work of three arrays).
           array_agg(ARRAY[x.completions, {active_days}, x.duration_seconds::float8 / 60])
               FILTER (WHERE m.valued) AS values_v"""


def _statement() -> str:
    out = (_ROLLUP.replace("app_positions", _positions()).replace("{valid_day}", _VALID_DAY)
           .replace("{week_of_day}", _WEEK_OF_DAY))
    for metric in ("completions", "active_days", "minutes"):
        out = out.replace(f"app_unpad({metric})", _unpadded(metric))
    out = (out.replace("app_signature_sums(daily)", _signature_sums("1", "1"))
           .replace("app_signature_sums(periods)", _signature_sums("x.days", "x.active_days")))
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

    def __add__(self, other: RollupCounts) -> RollupCounts:
        return RollupCounts(self.inserted + other.inserted, self.updated + other.updated,
                            self.deleted + other.deleted)


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


GRANULARITIES: tuple[Granularity, ...] = ("daily", "weekly", "monthly")

Pairs = Sequence[tuple[UUID, date]]


def _params(spans: Mapping[Granularity, tuple[date, date]],
            scope: Mapping[Granularity, Pairs] | None) -> dict[str, Any]:
    from ms8.domain import privacy  # the job's side only: readers of this module need not load it

    grans = list(spans)
    pairs = [(GRANULARITIES.index(g), o, s) for g in grans for o, s in (scope or {}).get(g, ())]
    return {
        "gs": [GRANULARITIES.index(g) for g in grans], "grans": grans, "steps": [UNITS[g][1] for g in grans],
        "starts": [spans[g][0] for g in grans], "ends": [spans[g][1] for g in grans],
        "first": min(s for s, _ in spans.values()), "last": max(e for _, e in spans.values()),
        # Per granularity, the days it reads: an empty range for one the run leaves alone.
        **{f"{g}_{k}": spans.get(g, (date.min, date.min))[i] for g in GRANULARITIES
           for i, k in enumerate(("start", "end"))},
        "learner": LEARNER, "version": ROLLUP_VERSION, "everything": scope is None,
        "cap_completions": privacy.CAP_COMPLETIONS_PER_DAY, "cap_seconds": privacy.CAP_SECONDS_PER_DAY,
        "scope_orgs": sorted({o for _, o, _ in pairs}),
        "pair_gs": [g for g, _, _ in pairs], "pair_orgs": [o for _, o, _ in pairs],
        "pair_starts": [s for _, _, s in pairs],
    }


def use_rollup_settings(conn: psycopg.Connection) -> None:
    """For the rest of the transaction: the sorts and hash tables of a backfill (over a million
    learner days) in memory rather than spilled to disk (WORK_MEM, HASH_MEM_MULTIPLIER), lock
    waits bounded (LOCK_TIMEOUT)."""
    conn.execute("SELECT set_config('work_mem', %s, true), set_config('hash_mem_multiplier', %s, true), "
                 "set_config('lock_timeout', %s, true)", (WORK_MEM, HASH_MEM_MULTIPLIER, LOCK_TIMEOUT))


def rollup_spans(
    conn: psycopg.Connection, spans: Mapping[Granularity, tuple[date, date]],
    scope: Mapping[Granularity, Pairs] | None = None,
) -> dict[Granularity, RollupCounts]:
    """Recompute, per granularity, the rows of the periods in its span [start, end) of every
    organization and cohort, or only of the (organization, period start) pairs in `scope` (a
    granularity without pairs is left alone); write only those that changed. One statement for
    all of them: the learner days are read once. Every start and end must be a period boundary."""
    narrowed: dict[Granularity, tuple[date, date]] = {}
    for granularity, (start, end) in spans.items():
        if scope is not None:
            pairs = scope.get(granularity, ())
            if not pairs:
                continue
            start = max(start, min(s for _, s in pairs))
            end = min(end, next_period(granularity, max(s for _, s in pairs)))
        if start < end:
            narrowed[granularity] = (start, end)
    out = {g: RollupCounts(0, 0, 0) for g in spans}
    if not narrowed:
        return out
    use_rollup_settings(conn)
    for granularity, inserted, updated, deleted in conn.execute(_STATEMENT, _params(narrowed, scope)).fetchall():
        out[granularity] = RollupCounts(int(inserted), int(updated), int(deleted))
    return out


def rollup(
    conn: psycopg.Connection, granularity: Granularity, start: date, end: date, scope: Pairs | None = None,
) -> RollupCounts:
    """rollup_spans for one granularity."""
    return rollup_spans(conn, {granularity: (start, end)},
                        None if scope is None else {granularity: scope})[granularity]


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
# The same pass counts the days the rollups leave out (see _VALID_DAY), per organization: the days
# are not read a third time for them.
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
    -- An assignment's learner is a user of its organization (its foreign key): only the role is
    -- checked, against the few users without the learner role.
    SELECT ta.organization_id, ta.trainer_id, ta.learner_id
    FROM trainer_assignments ta
    WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = ta.learner_id AND (%(learner)s = ANY (u.roles)) IS NOT TRUE)
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
                   # hashint8extended(d.score_micros, d.duration_seconds)) AS digest,
           count(*) FILTER (WHERE NOT {valid_day}) AS invalid
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
UNION ALL
-- The days left out, per organization (granularity NULL).
SELECT NULL, d.organization_id, NULL, sum(d.invalid)::bigint, NULL
FROM per_day d GROUP BY d.organization_id HAVING sum(d.invalid) > 0
ORDER BY 1, 2, 3
""".replace("{valid_day}", _VALID_DAY)


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed_periods found: per granularity, the changed periods' fingerprints; per
    organization (its id as text), the learner days of the window the rollups leave out."""

    periods: dict[Granularity, list[Fingerprint]]
    invalid_days: dict[str, int]


def changed_periods(conn: psycopg.Connection, spans: Mapping[Granularity, tuple[date, date]]) -> Changes:
    """Per granularity, the (organization, period) pairs of its span [start, end) whose inputs
    differ from those of their last rollup (or that were never rolled up), with their current
    fingerprints; and the learner days of the whole window that the rollups leave out (see
    _VALID_DAY), per organization: one pass over the days and memberships for every
    granularity."""
    grans = list(spans)
    rows = conn.execute(_CHANGED, {
        "grans": grans, "units": [UNITS[g][0] for g in grans], "steps": [UNITS[g][1] for g in grans],
        "starts": [spans[g][0] for g in grans], "ends": [spans[g][1] for g in grans],
        "first": min(s for s, _ in spans.values()), "last": max(e for _, e in spans.values()),
        # Per granularity, the days it reads: an empty range for one the run leaves alone.
        **{f"{g}_{k}": spans.get(g, (date.min, date.min))[i] for g in GRANULARITIES
           for i, k in enumerate(("start", "end"))},
        "learner": LEARNER, "version": ROLLUP_VERSION,
    }).fetchall()
    out: dict[Granularity, list[Fingerprint]] = {g: [] for g in grans}
    invalid: dict[str, int] = {}
    for granularity, org, start, inputs, digest in rows:
        if granularity is None:
            invalid[str(org)] = int(inputs)
        else:
            out[granularity].append(Fingerprint(org, start, inputs, digest))
    return Changes(out, invalid)


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


def pending_spans(conn: psycopg.Connection) -> tuple[date, date] | None:
    """[first, last] day of every span of learner days deleted since the last run (erasure,
    migration 0009), taken off the list: the run recomputes them. None when there are none."""
    row = conn.execute(
        "WITH taken AS (DELETE FROM app.rollup_pending RETURNING first_day, last_day) "
        "SELECT min(first_day), max(last_day) FROM taken"
    ).fetchone()
    return (row[0], row[1]) if row and row[0] is not None else None
