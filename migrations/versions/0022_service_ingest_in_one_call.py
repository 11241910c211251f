"""A platform's batch of learning events in one call: the service context, the insert, the
learner days and the learners noted for the refresh job in one statement.

app.request_service_ingest(p_client_id, p_scope, p_org_id, the events as ten arrays, the verbs of
the vocabulary and the mastery half-life) does what `POST /v1/events` with a platform token did in
a transaction of three round trips (BEGIN and app.begin_service_request; the insert statement;
COMMIT): it calls app.begin_service_request (the same checks, errors MS402-MS405 and settings),
then runs ingest's insert statement (the events stored in key order, replays skipped, their
learners' UTC days added to, their learners noted in analytics_pending) in the organization that
call resolved, as a platform's events (not the learner's own), and returns how many events were
stored and, only when fewer than were sent, their ids.

The application sends it as one statement in autocommit: one round trip, the batch written whole
or not at all, and the context ends with the statement (nothing a transaction pooler would pin).
PL/pgSQL keeps the statement's plan for the session, where the statement sent by the client was
planned for every batch (~1.5 ms). SECURITY INVOKER: the runtime role's policies and the foreign
keys to users confine every row exactly as before. Like app.request_service_upsert_analytics
(0019), it bounds its lock waits with a lock_timeout of its own (15 s).

The statement is generated from ms8.repositories.events.PLATFORM_STATEMENT, the one place it is
written (from the same insert, learner-day and noting text the other write paths use); this
migration is a snapshot of it, and tests/db/test_service_ingest.py fails when the function in the
database no longer runs the code's statement (a change there needs a migration installing the
function again).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"
SIGNATURE = "app.request_service_ingest(text, text, uuid, uuid[], uuid[], text[], text[], text[], text[], real[], boolean[], integer[], timestamptz[], text[], text[], text, text, float8)"

UPGRADE = f"""
CREATE TYPE app.request_service_ingest_row AS (inserted integer, stored_ids uuid[]);
CREATE FUNCTION app.request_service_ingest(
    p_client_id text, p_scope text, p_org_id uuid,
    p_ids uuid[], p_users uuid[], p_verbs text[], p_objects text[], p_types text[],
    p_skills text[], p_scores real[], p_successes boolean[], p_durations integer[], p_occurred timestamptz[],
    p_completion_verbs text[], p_assessment_verbs text[], p_passed_verb text, p_session_verb text, p_half_life_s float8)
RETURNS SETOF app.request_service_ingest_row
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp SET lock_timeout = '15s'
ROWS 1 AS $fn$
DECLARE
    v_org uuid;
BEGIN
    v_org := app.begin_service_request(p_client_id, p_scope, p_org_id);
    RETURN QUERY
WITH stored AS (
    INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type,
                                 skills, score, success, duration_seconds, occurred_at, sent_by_learner)
    SELECT x.event_id, x.user_id, v_org, x.verb, x.object_id, x.object_type,
           string_to_array(x.skills, E'\\x1f'), x.score, x.success, x.duration_seconds, x.occurred_at,
           false
    FROM unnest(p_ids::uuid[], p_users::uuid[], p_verbs::text[], p_objects::text[], p_types::text[],
                p_skills::text[], p_scores::real[], p_successes::boolean[], p_durations::integer[],
                p_occurred::timestamptz[])
         AS x(event_id, user_id, verb, object_id, object_type, skills, score, success,
              duration_seconds, occurred_at)
    ORDER BY x.user_id, x.event_id, x.occurred_at
    ON CONFLICT (user_id, event_id, occurred_at) DO NOTHING
    RETURNING event_id, user_id, verb, object_id, skills, score, duration_seconds, occurred_at
),

noted AS (
    INSERT INTO analytics_pending AS p (user_id, organization_id, since, occurred_from)
    SELECT s.user_id, v_org, now(), min(s.occurred_at) FROM stored s GROUP BY s.user_id ORDER BY s.user_id

ON CONFLICT (user_id) DO UPDATE SET
    since = least(p.since, EXCLUDED.since),
    occurred_from = least(p.occurred_from, EXCLUDED.occurred_from),
    version = p.version + 1,
    rebuild_days = ARRAY(SELECT DISTINCT d FROM unnest(p.rebuild_days || EXCLUDED.rebuild_days) AS d)

),

new_days AS (
    SELECT s.user_id, (s.occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS events,
           count(*) FILTER (WHERE s.verb = ANY (p_completion_verbs::text[])) AS completions,
           coalesce(array_agg(DISTINCT s.object_id ORDER BY s.object_id)
                    FILTER (WHERE s.verb = ANY (p_completion_verbs::text[])), '{{}}') AS completed_objects,
           count(*) FILTER (WHERE s.verb = ANY (p_assessment_verbs::text[])) AS assessments,
           count(s.score) FILTER (WHERE s.verb = ANY (p_assessment_verbs::text[])) AS scored,
           coalesce(sum(round(s.score::float8 * 1e6)::bigint)
                    FILTER (WHERE s.verb = ANY (p_assessment_verbs::text[])), 0) AS score_micros,
           count(*) FILTER (WHERE s.verb = p_passed_verb) AS passed,
           coalesce(sum(s.duration_seconds), 0) AS duration_seconds,
           count(*) FILTER (WHERE s.verb = p_session_verb) AS sessions,
           max(s.occurred_at) AS last_at,
           bit_or(set_bit(repeat('0', 96)::bit(96), floor((date_part('epoch', s.occurred_at) - floor(date_part('epoch', s.occurred_at) / 86400) * 86400) / 900)::integer, 1))
               AS quarters,
           coalesce(sum(s.score::float8 * power(2::float8, (date_part('epoch', s.occurred_at) - floor(date_part('epoch', s.occurred_at) / 86400) * 86400) / p_half_life_s)) FILTER (WHERE s.score IS NOT NULL AND s.verb = ANY (p_assessment_verbs::text[])), 0)
               AS weighted_scores,
           coalesce(sum(power(2::float8, (date_part('epoch', s.occurred_at) - floor(date_part('epoch', s.occurred_at) / 86400) * 86400) / p_half_life_s)) FILTER (WHERE s.score IS NOT NULL AND s.verb = ANY (p_assessment_verbs::text[])), 0) AS weights
    FROM stored s
    GROUP BY 1, 2
),
new_skill_days AS (
    SELECT user_id, day, jsonb_object_agg(skill, jsonb_build_array(n, m)) AS skills,
           jsonb_object_agg(skill, jsonb_build_array(ws, w)) AS weighted_skills
    FROM (
        SELECT s.user_id, (s.occurred_at AT TIME ZONE 'UTC')::date AS day, k.skill,
               count(*) AS n, sum(round(s.score::float8 * 1e6)::bigint) AS m,
               sum(s.score::float8 * power(2::float8, (date_part('epoch', s.occurred_at) - floor(date_part('epoch', s.occurred_at) / 86400) * 86400) / p_half_life_s)) AS ws, sum(power(2::float8, (date_part('epoch', s.occurred_at) - floor(date_part('epoch', s.occurred_at) / 86400) * 86400) / p_half_life_s)) AS w
        FROM stored s CROSS JOIN LATERAL unnest(s.skills) AS k(skill)
        WHERE s.score IS NOT NULL AND s.verb = ANY (p_assessment_verbs::text[])
        GROUP BY 1, 2, 3
    ) per_skill
    GROUP BY 1, 2
),
days_written AS (
    INSERT INTO learner_daily_activity AS d
        (organization_id, user_id, day, events, completions, completed_objects, assessments, scored,
         score_micros, passed, duration_seconds, sessions, skills, last_at, quarters, weighted_scores, weights,
         weighted_skills)
    SELECT v_org, n.user_id, n.day, n.events, n.completions, n.completed_objects, n.assessments, n.scored,
           n.score_micros, n.passed, n.duration_seconds, n.sessions, coalesce(k.skills, '{{}}'), n.last_at,
           n.quarters, n.weighted_scores, n.weights, coalesce(k.weighted_skills, '{{}}')
    FROM new_days n LEFT JOIN new_skill_days k ON k.user_id = n.user_id AND k.day = n.day
    ORDER BY n.user_id, n.day
    ON CONFLICT (user_id, day) DO UPDATE SET
        events = d.events + EXCLUDED.events,
        completions = d.completions + EXCLUDED.completions,
        completed_objects = CASE WHEN EXCLUDED.completed_objects = '{{}}' THEN d.completed_objects ELSE
            ARRAY(SELECT DISTINCT o FROM unnest(d.completed_objects || EXCLUDED.completed_objects) AS o ORDER BY o)
            END,
        assessments = d.assessments + EXCLUDED.assessments,
        scored = d.scored + EXCLUDED.scored,
        score_micros = d.score_micros + EXCLUDED.score_micros,
        passed = d.passed + EXCLUDED.passed,
        duration_seconds = d.duration_seconds + EXCLUDED.duration_seconds,
        sessions = d.sessions + EXCLUDED.sessions,
        skills = CASE WHEN EXCLUDED.skills = '{{}}' THEN d.skills ELSE d.skills || (SELECT jsonb_object_agg(x.k, jsonb_build_array(
                (x.v ->> 0)::bigint + coalesce((d.skills -> x.k ->> 0)::bigint, 0),
                (x.v ->> 1)::bigint + coalesce((d.skills -> x.k ->> 1)::bigint, 0)))
            FROM jsonb_each(EXCLUDED.skills) AS x(k, v)) END,
        last_at = greatest(d.last_at, EXCLUDED.last_at),
        quarters = d.quarters | EXCLUDED.quarters,
        weighted_scores = d.weighted_scores + EXCLUDED.weighted_scores,
        weights = d.weights + EXCLUDED.weights,
        weighted_skills = CASE WHEN EXCLUDED.weighted_skills = '{{}}' THEN d.weighted_skills
            ELSE d.weighted_skills || (SELECT jsonb_object_agg(x.k, jsonb_build_array(
                (x.v ->> 0)::float8 + coalesce((d.weighted_skills -> x.k ->> 0)::float8, 0),
                (x.v ->> 1)::float8 + coalesce((d.weighted_skills -> x.k ->> 1)::float8, 0)))
            FROM jsonb_each(EXCLUDED.weighted_skills) AS x(k, v)) END
)

SELECT count(*)::integer, CASE WHEN count(*) < cardinality(p_ids) THEN array_agg(event_id) END FROM stored;
END $fn$;
REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {RUNTIME};
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    op.execute("DROP TYPE app.request_service_ingest_row")
