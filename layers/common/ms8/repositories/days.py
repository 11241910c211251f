"""learner_daily_activity (migration 0008): one row per learner and UTC day with activity.

Ingest adds a batch's stored events to it inside its insert statement (DAYS_FROM_STORED, a CTE
over the `stored` rows the INSERT ... RETURNING produced); rollups, cohort views and the
at-risk rule read it. The verbs come from the vocabulary as parameters (VERB_PARAMS).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
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
# - weighted_skills: {skill: [sum(score * f), sum(f)]} likewise (app.add_weight_sums adds two).
DAY_PARAMS: dict[str, Any] = {**VERB_PARAMS, "half_life_s": metrics.MASTERY_HALF_LIFE_DAYS * 86400.0}
_SECONDS_INTO_DAY = "(date_part('epoch', s.occurred_at) - floor(date_part('epoch', s.occurred_at) / 86400) * 86400)"
_FACTOR = f"power(2::float8, {_SECONDS_INTO_DAY} / %(half_life_s)s)"
_SCORED = "s.score IS NOT NULL AND s.verb = ANY (%(assessment_verbs)s::text[])"

# Scores are summed in micro-units (integers): exact whatever order events arrive in.
# A day already there gets the new events added: counts and sums add up, completed objects are
# merged (distinct, sorted), per-skill sums added (app.add_skill_sums), last_at the later.
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
        skills = CASE WHEN EXCLUDED.skills = '{}' THEN d.skills ELSE app.add_skill_sums(d.skills, EXCLUDED.skills) END,
        last_at = greatest(d.last_at, EXCLUDED.last_at),
        quarters = d.quarters | EXCLUDED.quarters,
        weighted_scores = d.weighted_scores + EXCLUDED.weighted_scores,
        weights = d.weights + EXCLUDED.weights,
        weighted_skills = CASE WHEN EXCLUDED.weighted_skills = '{}' THEN d.weighted_skills
            ELSE app.add_weight_sums(d.weighted_skills, EXCLUDED.weighted_skills) END
)
"""


_READ = """
SELECT user_id, day, completed_objects, scored, weighted_scores, weights, weighted_skills, sessions,
       duration_seconds, quarters::text
FROM learner_daily_activity
WHERE user_id = ANY (%s) AND day >= %s AND day <= %s
"""


def read(
    conn: psycopg.Connection, user_ids: Sequence[UUID], first: date, last: date
) -> dict[UUID, list[metrics.DayRow]]:
    """The users' days from `first` to `last` (UTC dates), per user (RLS decides visibility)."""
    out: dict[UUID, list[metrics.DayRow]] = {}
    if not user_ids:
        return out
    for user, *fields in conn.execute(_READ, (list(user_ids), first, last)).fetchall():
        out.setdefault(user, []).append(metrics.DayRow(*fields))
    return out


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
