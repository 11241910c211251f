"""learner_daily_activity (migration 0008): one row per learner and UTC day with activity.

Ingest adds a batch's stored events to it inside its insert statement (DAYS_FROM_STORED, a CTE
over the `stored` rows the INSERT ... RETURNING produced); rollups, cohort views and the
at-risk rule read it. The verbs come from the vocabulary as parameters (VERB_PARAMS).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from ms8.domain import metrics, vocabulary

VERB_PARAMS: dict[str, Any] = {
    "completion_verbs": list(vocabulary.COMPLETION_VERBS),
    "assessment_verbs": list(vocabulary.ASSESSMENT_VERBS),
    "passed_verb": vocabulary.PASSED_VERB,
    "session_verb": vocabulary.SESSION_VERB,
}

# What the analytics snapshots read from a day besides the counts (migration 0011), so that they
# are derived from the days instead of the raw events (ms8.domain.metrics.from_days):
# - quarters: the quarter-hours (UTC) of the day with any activity, bit q = [q*15 min, (q+1)*15 min):
#   every time zone's day starts on a quarter-hour, so active local days follow exactly;
# - weighted_scores / weights: sum(score * f) and sum(f) over the day's scored assessments, with
#   f = 2^(seconds into the UTC day / half-life): the recency weight of an event at `at` seen at
#   `now` is 0.5^((now - day start) / half-life) * f, so sum(w * score) = that factor * weighted_scores;
# - weighted_skills: {skill: [sum(score * f), sum(f)]} likewise.
DAY_PARAMS: dict[str, Any] = {**VERB_PARAMS, "half_life_s": metrics.MASTERY_HALF_LIFE_DAYS * 86400.0}
_SECONDS_INTO_DAY = "(date_part('epoch', s.occurred_at) - floor(date_part('epoch', s.occurred_at) / 86400) * 86400)"
_FACTOR = f"power(2::float8, {_SECONDS_INTO_DAY} / %(half_life_s)s)"
_SCORED = "s.score IS NOT NULL AND s.verb = ANY (%(assessment_verbs)s::text[])"


def _add_pairs(column: str, number: str) -> str:
    """The stored {skill: [a, b]} of `column` plus the new row's, key by key: the stored object
    with each of the new row's skills replaced by the sum of both (a subquery run for each updated
    row over the new row's few skills only; far cheaper than calling a SQL function per row, whose
    executor is set up on every call, or than grouping the union of both objects). A skill absent
    from the stored day adds to 0: the same numbers as summing both objects' pairs per skill."""
    return f"""d.{column} || (SELECT jsonb_object_agg(x.k, jsonb_build_array(
                (x.v ->> 0)::{number} + coalesce((d.{column} -> x.k ->> 0)::{number}, 0),
                (x.v ->> 1)::{number} + coalesce((d.{column} -> x.k ->> 1)::{number}, 0)))
            FROM jsonb_each(EXCLUDED.{column}) AS x(k, v))"""


# Scores are summed in micro-units (integers): exact whatever order events arrive in.
# A day already there gets the new events added: counts and sums add up, completed objects are
# merged (distinct, sorted), per-skill pairs added (_add_pairs), last_at the later.
DAYS_FROM_STORED = """
new_days AS (
    SELECT s.user_id, (s.occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS events,
           count(*) FILTER (WHERE s.verb = ANY (%(completion_verbs)s::text[])) AS completions,
           coalesce(array_agg(DISTINCT s.object_id ORDER BY s.object_id)
                    FILTER (WHERE s.verb = ANY (%(completion_verbs)s::text[])), '{}') AS completed_objects,
           count(*) FILTER (WHERE s.verb = ANY (%(assessment_verbs)s::text[])) AS assessments,
           count(s.score) FILTER (WHERE s.verb = ANY (%(assessment_verbs)s::text[])) AS scored,
           coalesce(sum(round(s.score::float8 * 1e6)::bigint)
                    FILTER (WHERE s.verb = ANY (%(assessment_verbs)s::text[])), 0) AS score_micros,
           count(*) FILTER (WHERE s.verb = %(passed_verb)s) AS passed,
           coalesce(sum(s.duration_seconds), 0) AS duration_seconds,
           count(*) FILTER (WHERE s.verb = %(session_verb)s) AS sessions,
           max(s.occurred_at) AS last_at,
           bit_or(set_bit(repeat('0', 96)::bit(96), floor(""" + _SECONDS_INTO_DAY + """ / 900)::integer, 1))
               AS quarters,
           coalesce(sum(s.score::float8 * """ + _FACTOR + """) FILTER (WHERE """ + _SCORED + """), 0)
               AS weighted_scores,
           coalesce(sum(""" + _FACTOR + """) FILTER (WHERE """ + _SCORED + """), 0) AS weights
    FROM stored s
    GROUP BY 1, 2
),
new_skill_days AS (
    SELECT user_id, day, jsonb_object_agg(skill, jsonb_build_array(n, m)) AS skills,
           jsonb_object_agg(skill, jsonb_build_array(ws, w)) AS weighted_skills
    FROM (
        SELECT s.user_id, (s.occurred_at AT TIME ZONE 'UTC')::date AS day, k.skill,
               count(*) AS n, sum(round(s.score::float8 * 1e6)::bigint) AS m,
               sum(s.score::float8 * """ + _FACTOR + """) AS ws, sum(""" + _FACTOR + """) AS w
        FROM stored s CROSS JOIN LATERAL unnest(s.skills) AS k(skill)
        WHERE s.score IS NOT NULL AND s.verb = ANY (%(assessment_verbs)s::text[])
        GROUP BY 1, 2, 3
    ) per_skill
    GROUP BY 1, 2
),
days_written AS (
    INSERT INTO learner_daily_activity AS d
        (organization_id, user_id, day, events, completions, completed_objects, assessments, scored,
         score_micros, passed, duration_seconds, sessions, skills, last_at, quarters, weighted_scores, weights,
         weighted_skills)
    SELECT %(org)s, n.user_id, n.day, n.events, n.completions, n.completed_objects, n.assessments, n.scored,
           n.score_micros, n.passed, n.duration_seconds, n.sessions, coalesce(k.skills, '{}'), n.last_at,
           n.quarters, n.weighted_scores, n.weights, coalesce(k.weighted_skills, '{}')
    FROM new_days n LEFT JOIN new_skill_days k ON k.user_id = n.user_id AND k.day = n.day
    ORDER BY n.user_id, n.day
    ON CONFLICT (user_id, day) DO UPDATE SET
        events = d.events + EXCLUDED.events,
        completions = d.completions + EXCLUDED.completions,
        completed_objects = CASE WHEN EXCLUDED.completed_objects = '{}' THEN d.completed_objects ELSE
            ARRAY(SELECT DISTINCT o FROM unnest(d.completed_objects || EXCLUDED.completed_objects) AS o ORDER BY o)
            END,
        assessments = d.assessments + EXCLUDED.assessments,
        scored = d.scored + EXCLUDED.scored,
        score_micros = d.score_micros + EXCLUDED.score_micros,
        passed = d.passed + EXCLUDED.passed,
        duration_seconds = d.duration_seconds + EXCLUDED.duration_seconds,
        sessions = d.sessions + EXCLUDED.sessions,
        skills = CASE WHEN EXCLUDED.skills = '{}' THEN d.skills ELSE """ + _add_pairs("skills", "bigint") + """ END,
        last_at = greatest(d.last_at, EXCLUDED.last_at),
        quarters = d.quarters | EXCLUDED.quarters,
        weighted_scores = d.weighted_scores + EXCLUDED.weighted_scores,
        weights = d.weights + EXCLUDED.weights,
        weighted_skills = CASE WHEN EXCLUDED.weighted_skills = '{}' THEN d.weighted_skills
            ELSE """ + _add_pairs("weighted_skills", "float8") + """ END
)
"""


# The sums of each learner's days wholly inside the windows (ms8.domain.metrics.DaySums), one row
# per learner: the days from the first any window reaches back to until before now's UTC day,
# without the edge days (ms8.domain.metrics.Edges; their events are read one by one). Each sum
# takes the days inside its own window: strictly after the UTC day its window starts on.
# The mastery sums get each day's factor 0.5^((now - day start) / half-life). The active
# quarter-hours become local dates through `segments`: per time zone and UTC day, the runs of
# quarter-hours that fall on one local date (ms8.domain.metrics.local_segments), so no time-zone
# conversion runs per row.
_SUMS = """
WITH p AS (
    SELECT * FROM unnest(%(users)s::uuid[], %(zones)s::text[], %(engaged_from)s::date[], %(streak_from)s::date[])
        AS p(user_id, tz, engaged_from, streak_from)
),
d AS (
    SELECT p.user_id, p.tz, p.engaged_from, p.streak_from, d.day, d.completed_objects, d.scored,
           d.weighted_scores, d.weights, d.weighted_skills, d.sessions, d.duration_seconds, d.quarters,
           power(0.5::float8, (%(now_s)s - date_part('epoch', d.day::timestamp)) / %(half_life_s)s) AS factor
    FROM p JOIN learner_daily_activity d ON d.user_id = p.user_id
    WHERE d.day >= %(first)s AND d.day < %(today)s
      AND d.day NOT IN (%(recent_from)s, %(previous_from)s, %(mastery_from)s, p.engaged_from, p.streak_from)
),
objects AS (
    SELECT d.user_id,
           array_agg(DISTINCT o) FILTER (WHERE d.day > %(recent_from)s) AS recent,
           array_agg(DISTINCT o) FILTER (WHERE d.day < %(recent_from)s AND d.day > %(previous_from)s) AS previous
    FROM d CROSS JOIN LATERAL unnest(d.completed_objects) AS o
    WHERE d.day > %(previous_from)s
    GROUP BY 1
),
totals AS (
    SELECT d.user_id,
           sum(d.factor * d.weighted_scores) FILTER (WHERE d.day > %(mastery_from)s) AS weighted_scores,
           sum(d.factor * d.weights) FILTER (WHERE d.day > %(mastery_from)s) AS weights,
           sum(d.scored) FILTER (WHERE d.day > %(mastery_from)s) AS scored,
           sum(d.sessions) FILTER (WHERE d.day > d.engaged_from) AS sessions,
           sum(d.duration_seconds) FILTER (WHERE d.day > d.engaged_from) AS duration_seconds
    FROM d GROUP BY 1
),
skills AS (
    SELECT user_id, jsonb_object_agg(skill, jsonb_build_array(s, w)) AS skills
    FROM (SELECT d.user_id, k.skill, sum(d.factor * (k.v ->> 0)::float8) AS s, sum(d.factor * (k.v ->> 1)::float8) AS w
          FROM d CROSS JOIN LATERAL jsonb_each(d.weighted_skills) AS k(skill, v)
          WHERE d.day > %(mastery_from)s AND d.weighted_skills <> '{}' GROUP BY 1, 2) per_skill
    GROUP BY 1
),
segments AS (
    SELECT * FROM unnest(%(seg_zones)s::text[], %(seg_days)s::date[], %(seg_from)s::integer[],
                         %(seg_len)s::integer[], %(seg_local)s::date[]) AS s(tz, day, q_from, q_len, local_day)
),
local_days AS (
    SELECT d.user_id,
           array_agg(DISTINCT s.local_day) FILTER (WHERE d.day > d.engaged_from) AS engaged,
           array_agg(DISTINCT s.local_day) FILTER (WHERE d.day > d.streak_from) AS streak
    FROM d JOIN segments s ON s.tz = d.tz AND s.day = d.day
    WHERE bit_count(substring(d.quarters FROM s.q_from + 1 FOR s.q_len)) > 0
    GROUP BY 1
)
SELECT p.user_id, o.recent, o.previous, t.weighted_scores, t.weights, t.scored, k.skills, t.sessions,
       t.duration_seconds, l.engaged, l.streak
FROM p
JOIN totals t ON t.user_id = p.user_id
LEFT JOIN objects o ON o.user_id = p.user_id
LEFT JOIN skills k ON k.user_id = p.user_id
LEFT JOIN local_days l ON l.user_id = p.user_id
"""


def sums(
    conn: psycopg.Connection, learners: Mapping[UUID, tuple[str, metrics.Edges]], now: datetime
) -> dict[UUID, metrics.DaySums]:
    """The day sums of each learner (user id -> (time zone name, edges)); a learner without days
    inside the windows is left out (nothing to add). RLS decides visibility."""
    if not learners:
        return {}
    any_edges = next(iter(learners.values()))[1]
    first = metrics.first_day(now)
    segments = [
        (tz, day, q_from, q_to - q_from, local)
        for tz in sorted({tz for tz, _ in learners.values()})
        for day in (first + timedelta(days=i) for i in range((any_edges.today - first).days))
        for q_from, q_to, local in metrics.local_segments(tz, day)
    ]
    seg_zones, seg_days, seg_from, seg_len, seg_local = (list(c) for c in zip(*segments, strict=True))
    rows = conn.execute(_SUMS, {
        "seg_zones": seg_zones, "seg_days": seg_days, "seg_from": seg_from, "seg_len": seg_len,
        "seg_local": seg_local,
        "users": list(learners), "zones": [tz for tz, _ in learners.values()],
        "engaged_from": [e.engaged_from for _, e in learners.values()],
        "streak_from": [e.streak_from for _, e in learners.values()],
        "first": first, "today": any_edges.today, "recent_from": any_edges.recent_from,
        "previous_from": any_edges.previous_from, "mastery_from": any_edges.mastery_from,
        "now_s": now.timestamp(), "half_life_s": DAY_PARAMS["half_life_s"],
    }).fetchall()
    return {
        r[0]: metrics.DaySums(
            r[1] or (), r[2] or (), r[3] or 0.0, r[4] or 0.0, int(r[5] or 0),
            {k: tuple(v) for k, v in (r[6] or {}).items()}, int(r[7] or 0), int(r[8] or 0), r[9] or (), r[10] or (),
        )
        for r in rows
    }


# The same aggregation over events already stored (a load that bypassed ingest, a repair): the
# organization's days are dropped and built again from its learning events.
_REBUILD = """
WITH stored AS (
    SELECT e.user_id, e.verb, e.object_id, e.skills, e.score, e.duration_seconds, e.occurred_at
    FROM learning_events e WHERE e.organization_id = %(org)s
),
""" + DAYS_FROM_STORED + """
SELECT count(*) FROM new_days
"""


def rebuild(conn: psycopg.Connection, organization_id: UUID) -> int:
    """Rebuild an organization's learner days from its learning events (owner, maintenance);
    returns the number of days written."""
    # A statement of its own: the insert below would not see rows deleted in the same statement.
    conn.execute("DELETE FROM learner_daily_activity WHERE organization_id = %s", (organization_id,))
    row = conn.execute(_REBUILD, {"org": organization_id, **DAY_PARAMS}).fetchone()
    assert row is not None
    return int(row[0])


# Some learners' days built again from their events, day by day: only the (user, day) pairs
# asked for, each from that UTC day's events (a day holds events of one monthly partition, and a
# day that lost or gained events is inside the events' retention; older days have no events left
# to rebuild them from and are never touched).
_PAIRS = "unnest(%(users)s::uuid[], %(days)s::date[]) AS p(user_id, day)"
_DELETE_PAIRS = "DELETE FROM learner_daily_activity d USING " + _PAIRS + """
WHERE d.organization_id = %(org)s AND d.user_id = p.user_id AND d.day = p.day"""
_REBUILD_PAIRS = """
WITH stored AS (
    SELECT e.user_id, e.verb, e.object_id, e.skills, e.score, e.duration_seconds, e.occurred_at
    FROM """ + _PAIRS + """
    JOIN learning_events e ON e.user_id = p.user_id
     AND e.occurred_at >= p.day::timestamp AT TIME ZONE 'UTC'
     AND e.occurred_at < (p.day + 1)::timestamp AT TIME ZONE 'UTC'
    WHERE e.organization_id = %(org)s
),
""" + DAYS_FROM_STORED + """
SELECT count(*) FROM new_days
"""


def rebuild_user_days(conn: psycopg.Connection, organization_id: UUID, days: Mapping[UUID, Collection[date]]) -> int:
    """Build some learners' UTC days again from their learning events (owner, maintenance): days
    whose events changed outside ingest's statement (a voided xAPI statement's event deleted, or
    statements claimed when their actor became a user). Returns the days written."""
    pairs = sorted((u, d) for u, ds in days.items() for d in set(ds))
    if not pairs:
        return 0
    params = {"org": organization_id, "users": [u for u, _ in pairs], "days": [d for _, d in pairs], **DAY_PARAMS}
    # Two statements, as in rebuild(): the insert would not see the rows deleted by its own statement.
    conn.execute(_DELETE_PAIRS, params)
    row = conn.execute(_REBUILD_PAIRS, params).fetchone()
    assert row is not None
    return int(row[0])


# One batch of days past retention, found per organization through the (organization_id, day)
# index (a day-only condition has no index to use), deleted by primary key.
_DELETE_BEFORE = """
WITH old AS (
    SELECT d.user_id, d.day
    FROM organizations o
    CROSS JOIN LATERAL (
        SELECT x.user_id, x.day FROM learner_daily_activity x
        WHERE x.organization_id = o.id AND x.day < %(cutoff)s
        LIMIT %(limit)s
    ) d
    LIMIT %(limit)s
)
DELETE FROM learner_daily_activity t USING old
WHERE t.user_id = old.user_id AND t.day = old.day
"""


def delete_before(conn: psycopg.Connection, cutoff: date, *, batch: int, batches: int) -> tuple[int, bool]:
    """Delete learner days before `cutoff` (owner, maintenance), at most `batch` rows a statement
    and `batches` statements: (rows deleted, whether some may remain for the next run).

    Deleting days records their span for the rollup job (the erasure trigger of 0009); the spans
    this retention made are taken back off that list in the same transaction: every period they
    touch starts before the cutoff, so it is past retention too, and recomputing it from the days
    that are left would overwrite its history with the figures of an emptied period.
    """
    deleted, more = 0, False
    for _ in range(batches):
        n = conn.execute(_DELETE_BEFORE, {"cutoff": cutoff, "limit": batch}).rowcount
        deleted += n
        more = n == batch
        if not more:
            break
    conn.execute("DELETE FROM app.rollup_pending WHERE noted_at = now() AND last_day < %s", (cutoff,))
    return deleted, more
