"""The population rollups computed straight from the raw learning events (the benchmark's
baseline): the same figures, populations (every organization and every trainer cohort),
granularities and window as the rollup job (ms8.jobs.rollups), but each learner's figures per
period are aggregated from `learning_events` instead of the learner days. Written into
`bench_raw_rollups` (the shape of population_rollups); bench_rollups.py holds its rows equal to
the job's.

Set-based like the job: one statement per granularity, every population at once, inactive
learners as the zeros of the distributions (the same padding arithmetic as the job's statement
before it was reworked, frozen here), no fingerprints: it computes every period each time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time

import psycopg

from ms8.domain import privacy, vocabulary
from ms8.repositories.rollups import use_rollup_settings

UNITS = {"daily": ("day", "1 day"), "weekly": ("week", "7 days"), "monthly": ("month", "1 month")}
QUARTILES = (0.25, 0.5, 0.75)

# The shape of population_rollups with its checks, unique key and foreign keys, so that writing
# the rows costs what it costs the job.
CREATE = """
DO $$ BEGIN
    IF to_regclass('bench_raw_rollups') IS NULL THEN
        CREATE TABLE bench_raw_rollups (LIKE population_rollups INCLUDING ALL);
        ALTER TABLE bench_raw_rollups ADD FOREIGN KEY (organization_id) REFERENCES organizations (id),
            ADD FOREIGN KEY (organization_id, trainer_id) REFERENCES users (organization_id, id);
    END IF;
END $$;
TRUNCATE bench_raw_rollups;
"""

_STATEMENT = """
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
    SELECT n.*, app_positions
    FROM (SELECT organization_id, scope_id, trainer_id, count(*) AS learners FROM members GROUP BY 1, 2, 3) n
),
per_user AS (
    -- Each learner's figures per period, from the events: UTC days with an event, distinct
    -- completed objects, assessment events, scored ones and their scores, reported duration.
    SELECT e.user_id, x.period_start,
           count(DISTINCT x.day) AS active_days,
           count(DISTINCT e.object_id) FILTER (WHERE e.verb = ANY (%(completion_verbs)s::text[])) AS completions,
           count(*) FILTER (WHERE e.verb = ANY (%(assessment_verbs)s::text[])) AS assessments,
           count(e.score) FILTER (WHERE e.verb = ANY (%(assessment_verbs)s::text[])) AS scored,
           coalesce(sum(round(e.score::float8 * 1e6)::bigint)
                    FILTER (WHERE e.verb = ANY (%(assessment_verbs)s::text[])), 0) AS score_micros,
           coalesce(sum(e.duration_seconds), 0) AS duration_seconds
    FROM learning_events e
    CROSS JOIN LATERAL (
        SELECT (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
               date_trunc(%(unit)s, e.occurred_at AT TIME ZONE 'UTC')::date AS period_start
    ) x
    WHERE e.occurred_at >= %(from_ts)s AND e.occurred_at < %(to_ts)s
    GROUP BY 1, 2
),
active AS (
    SELECT m.organization_id, m.scope_id, a.period_start, a.active_days, a.completions,
           a.assessments, a.scored, a.score_micros, a.duration_seconds, a.duration_seconds::float8 / 60 AS minutes
    FROM per_user a JOIN members m ON m.user_id = a.user_id
),
stats AS (
    SELECT x.organization_id, x.scope_id, x.period_start, count(*) AS active_n,
           sum(x.completions) AS completions, sum(x.assessments) AS assessments, sum(x.scored) AS scored,
           sum(x.score_micros) AS score_micros, sum(x.duration_seconds) AS duration_seconds,
           array_agg(x.completions ORDER BY x.completions) AS completions_v,
           array_agg(x.active_days ORDER BY x.active_days) AS active_days_v,
           array_agg(x.minutes ORDER BY x.minutes) AS minutes_v,
           percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY x.score_micros::float8 / x.scored / 1e6)
               FILTER (WHERE x.scored > 0) AS score_q,
           sum(least(x.completions,
                     %(cap_completions)s * ((x.period_start + %(step)s::interval)::date - x.period_start)))
               AS capped_completions,
           sum(least(x.duration_seconds,
                     %(cap_seconds)s * ((x.period_start + %(step)s::interval)::date - x.period_start)))
               AS capped_seconds,
           count(*) FILTER (WHERE x.scored > 0) AS scored_learners,
           round(sum(x.score_micros::numeric / x.scored) FILTER (WHERE x.scored > 0)) AS learner_score_micros
    FROM active x
    GROUP BY x.organization_id, x.scope_id, x.period_start
)
INSERT INTO bench_raw_rollups
    (organization_id, trainer_id, granularity, period_start, period_end, learners, active_learners,
     completions, assessments, scored, score_micros, duration_seconds, distribution, capped, version)
SELECT p.organization_id, p.trainer_id, %(granularity)s, d.period_start, d.period_end, p.learners::integer,
       coalesce(s.active_n, 0)::integer,
       coalesce(s.completions, 0)::bigint, coalesce(s.assessments, 0)::bigint,
       coalesce(s.scored, 0)::bigint, coalesce(s.score_micros, 0)::bigint,
       coalesce(s.duration_seconds, 0)::bigint,
       jsonb_build_object(
           'completions', app_unpad(completions),
           'activeDays', app_unpad(active_days),
           'meanScore', app_q3(s.score_q[1], s.score_q[2], s.score_q[3], NULL),
           'minutes', app_unpad(minutes)),
       jsonb_build_object(
           'learners', p.learners, 'activeLearners', coalesce(s.active_n, 0),
           'completions', coalesce(s.capped_completions, 0), 'seconds', coalesce(s.capped_seconds, 0),
           'scoredLearners', coalesce(s.scored_learners, 0),
           'scoreMicros', coalesce(s.learner_score_micros, 0)),
       %(version)s
FROM populations p
CROSS JOIN periods d
LEFT JOIN stats s ON s.organization_id = p.organization_id AND s.scope_id = p.scope_id
                 AND s.period_start = d.period_start
"""


def _positions() -> str:
    return ", ".join(
        f"{q} * (n.learners - 1) AS pos_{i}, floor({q} * (n.learners - 1))::integer AS lo_{i}, "
        f"ceil({q} * (n.learners - 1))::integer AS hi_{i}"
        for i, q in enumerate(QUARTILES)
    )


def _q3(p25: str, median: str, p75: str, empty: str) -> str:
    return ", ".join(
        f"'{k}', trim_scale(round(coalesce(({v})::numeric, {empty}), 6))"
        for k, v in (("p25", p25), ("median", median), ("p75", p75))
    ).join(("jsonb_build_object(", ")"))


def _unpadded(metric: str) -> str:
    zeros = "(p.learners - coalesce(s.active_n, 0))"

    def at(i: str) -> str:
        return f"(CASE WHEN {i} < {zeros} THEN 0 ELSE s.{metric}_v[{i} - {zeros} + 1] END)"

    values = [f"{at(f'p.lo_{i}')} + (p.pos_{i} - p.lo_{i}) * ({at(f'p.hi_{i}')} - {at(f'p.lo_{i}')})"
              for i in range(len(QUARTILES))]
    return _q3(values[0], values[1], values[2], "0")


def _statement() -> str:
    out = _STATEMENT.replace("app_positions", _positions())
    for metric in ("completions", "active_days", "minutes"):
        out = out.replace(f"app_unpad({metric})", _unpadded(metric))
    return out.replace("app_q3(s.score_q[1], s.score_q[2], s.score_q[3], NULL)",
                       _q3("s.score_q[1]", "s.score_q[2]", "s.score_q[3]", "NULL"))


STATEMENT = _statement()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def run(conn: psycopg.Connection, spans: Mapping[vocabulary.Granularity, tuple[date, date]], version: int) -> int:
    """Every granularity's rollups of its span from the raw events into bench_raw_rollups
    (emptied first): rows written."""
    conn.execute(CREATE)
    # The job's memory for sorts and hashes (ms8.repositories.rollups.use_rollup_settings), the
    # same here.
    use_rollup_settings(conn)
    written = 0
    for granularity, (start, end) in spans.items():
        unit, step = UNITS[granularity]
        written += conn.execute(STATEMENT, {
            "granularity": granularity, "unit": unit, "step": step, "start": start, "end": end,
            "from_ts": _midnight(start), "to_ts": _midnight(end), "learner": vocabulary.LEARNER,
            "completion_verbs": list(vocabulary.COMPLETION_VERBS),
            "assessment_verbs": list(vocabulary.ASSESSMENT_VERBS),
            "cap_completions": privacy.CAP_COMPLETIONS_PER_DAY, "cap_seconds": privacy.CAP_SECONDS_PER_DAY,
            "version": version,
        }).rowcount
    return written


_COLUMNS = ("organization_id, trainer_id, granularity, period_start, period_end, learners, active_learners, "
            "completions, assessments, scored, score_micros, duration_seconds, distribution, capped, version")


def differences(conn: psycopg.Connection) -> tuple[int, int, int, int]:
    """(rows of the job, rows of the baseline, job rows the baseline lacks, baseline rows the job
    lacks), every stored column compared except computed_at."""
    row = conn.execute(
        f"SELECT (SELECT count(*) FROM population_rollups), (SELECT count(*) FROM bench_raw_rollups), "
        f"(SELECT count(*) FROM (SELECT {_COLUMNS} FROM population_rollups EXCEPT ALL "
        f"SELECT {_COLUMNS} FROM bench_raw_rollups) a), "
        f"(SELECT count(*) FROM (SELECT {_COLUMNS} FROM bench_raw_rollups EXCEPT ALL "
        f"SELECT {_COLUMNS} FROM population_rollups) b)"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])
