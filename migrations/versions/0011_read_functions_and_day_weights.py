"""Hot reads as PL/pgSQL functions (the context call in the same statement); learner days the
analytics snapshots are derived from.

Part 1, the reads:

Each request of the API is a short transaction on a connection a pooler (RDS Proxy) may hand to
another client between transactions, so the client cannot keep prepared statements (the proxy
pins a session that prepares). A PL/pgSQL function's queries are planned once per server process
and the plan is reused by every later call, whoever the caller: the RLS policies read the caller
from settings inside InitPlans, so one generic plan serves every user.

The application sends one statement per read:

    SELECT c.*, r.* FROM app.begin_request($1, $2) AS c
    LEFT JOIN LATERAL app.read_xxx(c.user_id, c.active_role, ...) AS r ON true

`begin_request` (SECURITY DEFINER, unchanged) sets the context for the statement's implicit
transaction; the read takes the context's user and role as arguments, so it runs after it. The
read functions are SECURITY INVOKER: the runtime role's RLS policies confine every row they
return, exactly as for a plain SELECT. The SECURITY DEFINER helpers they call (leaderboard, peer
comparison) keep their own confinement. Every function only reads and calls set_config, so all
of them work on a read-only standby.

Part 2, learner_daily_activity gains what the snapshots need beyond its counts, so that ingest
and the stale job derive them from a learner's few day rows instead of their raw events
(ms8.repositories.days describes each column): `quarters` (active quarter-hours, UTC),
`weighted_scores`, `weights` and `weighted_skills` (score sums with the recency weight factored
per day), and app.add_weight_sums to merge the per-skill pairs. Back-filled from the events.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"

ANALYTICS_COLUMNS = """id uuid, user_id uuid, role text, analytics_type text, data jsonb, source text,
    definition_version integer, window_days integer, data_through timestamptz, version bigint,
    updated_at timestamptz"""
SELECT_ANALYTICS = """a.id, a.user_id, a.role, a.analytics_type, a.data, a.source,
           a.definition_version, a.window_days, a.data_through, a.version, a.updated_at"""

FUNCTIONS = {
    "app.read_analytics(uuid, text, text, integer)": f"""
CREATE FUNCTION app.read_analytics(p_user uuid, p_role text, p_type text, p_limit integer)
RETURNS TABLE ({ANALYTICS_COLUMNS})
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT {SELECT_ANALYTICS}
    FROM analytics a
    WHERE a.user_id = p_user AND a.role = p_role AND (p_type IS NULL OR a.analytics_type = p_type)
    ORDER BY a.updated_at DESC
    LIMIT p_limit;
END $$;
""",
    "app.read_user_analytics(uuid, text, uuid, text, integer)": f"""
-- Another user's learner snapshots (trainer, org admin): `visible` says whether RLS lets the
-- caller see that user at all (a hidden user is a 404, not an empty list).
CREATE FUNCTION app.read_user_analytics(p_user uuid, p_role text, p_target uuid, p_type text,
                                        p_limit integer)
RETURNS TABLE (visible boolean, {ANALYTICS_COLUMNS})
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p_target) THEN
        RETURN QUERY SELECT false, NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::jsonb,
            NULL::text, NULL::integer, NULL::integer, NULL::timestamptz, NULL::bigint,
            NULL::timestamptz;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT true, {SELECT_ANALYTICS}
    FROM analytics a
    WHERE a.user_id = p_target AND a.role = 'learner'
      AND (p_type IS NULL OR a.analytics_type = p_type)
    ORDER BY a.updated_at DESC
    LIMIT p_limit;
END $$;
""",
    "app.read_analytics_summary(uuid, text)": f"""
CREATE FUNCTION app.read_analytics_summary(p_user uuid, p_role text)
RETURNS TABLE (total bigint, {ANALYTICS_COLUMNS})
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT count(*) OVER (), {SELECT_ANALYTICS}
    FROM analytics a
    WHERE a.user_id = p_user AND a.role = p_role
    ORDER BY a.updated_at DESC
    LIMIT 1;
END $$;
""",
    "app.read_me(uuid, text)": """
CREATE FUNCTION app.read_me(p_user uuid, p_role text)
RETURNS TABLE (id uuid, organization_id uuid, email text, name text, roles text[], timezone text)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT u.id, u.organization_id, u.email, u.name, u.roles, u.timezone
    FROM users u WHERE u.id = p_user;
END $$;
""",
    "app.read_gamification(uuid, text)": """
CREATE FUNCTION app.read_gamification(p_user uuid, p_role text)
RETURNS TABLE (points integer, level integer, badges jsonb, streaks jsonb, updated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT g.points, g.level, g.badges, g.streaks, g.updated_at
    FROM gamification g WHERE g.user_id = p_user AND g.role = 'learner';
END $$;
""",
    "app.read_leaderboard(uuid, text, integer)": """
CREATE FUNCTION app.read_leaderboard(p_user uuid, p_role text, p_limit integer)
RETURNS TABLE (rank bigint, display_name text, points integer, level integer, is_caller boolean,
               participants bigint)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY SELECT * FROM app.leaderboard(p_limit);
END $$;
""",
    "app.read_comparison(uuid, text, text)": """
-- Own headline snapshots beside the peer groups (k >= 10, app.peer_comparison): one row per
-- analytics type that has either.
CREATE FUNCTION app.read_comparison(p_user uuid, p_role text, p_type text)
RETURNS TABLE (analytics_type text, own_data jsonb, user_count integer, avg_value double precision,
               p25 double precision, p50 double precision, p75 double precision,
               refreshed_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT coalesce(o.analytics_type, g.analytics_type), o.data, g.user_count, g.avg_value,
           g.p25, g.p50, g.p75, g.refreshed_at
    FROM (SELECT a.analytics_type, a.data FROM analytics a
          WHERE a.user_id = p_user AND a.role = p_role
            AND (p_type IS NULL OR a.analytics_type = p_type)) o
    FULL JOIN app.peer_comparison(p_type) g ON g.analytics_type = o.analytics_type;
END $$;
""",
}


# Frozen at this revision: the assessment verbs and the mastery half-life (30 days) of the time.
ASSESSMENT_VERBS = "ARRAY['passed','failed','attempted']"
HALF_LIFE_S = 30 * 86400.0
INTO_DAY = "(date_part('epoch', e.occurred_at) - floor(date_part('epoch', e.occurred_at) / 86400) * 86400)"
FACTOR = f"power(2::float8, {INTO_DAY} / {HALF_LIFE_S})"
SCORED = f"e.score IS NOT NULL AND e.verb = ANY ({ASSESSMENT_VERBS})"

DAYS = f"""
ALTER TABLE learner_daily_activity
    ADD COLUMN quarters bit(96) NOT NULL DEFAULT repeat('0', 96)::bit(96),
    ADD COLUMN weighted_scores float8 NOT NULL DEFAULT 0 CHECK (weighted_scores >= 0),
    ADD COLUMN weights float8 NOT NULL DEFAULT 0 CHECK (weights >= 0),
    ADD COLUMN weighted_skills jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(weighted_skills) = 'object');
COMMENT ON COLUMN learner_daily_activity.quarters IS 'Quarter-hours (UTC) with activity: bit q is [q*15, (q+1)*15) minutes.';
COMMENT ON COLUMN learner_daily_activity.weighted_scores IS
    'sum(score * 2^(seconds into the day / mastery half-life)) over scored assessments';
COMMENT ON COLUMN learner_daily_activity.weights IS 'sum(2^(seconds into the day / mastery half-life)), same events';
COMMENT ON COLUMN learner_daily_activity.weighted_skills IS '{{skill: [weighted score sum, weight sum]}}';

CREATE FUNCTION app.add_weight_sums(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog AS $$
    SELECT coalesce(jsonb_object_agg(k, jsonb_build_array(s, w)), '{{}}'::jsonb)
    FROM (SELECT k, sum((v ->> 0)::float8) AS s, sum((v ->> 1)::float8) AS w
          FROM (SELECT * FROM jsonb_each(a) UNION ALL SELECT * FROM jsonb_each(b)) AS x(k, v)
          GROUP BY k) t
$$;
REVOKE ALL ON FUNCTION app.add_weight_sums(jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.add_weight_sums(jsonb, jsonb) TO {RUNTIME};

SELECT app.begin_maintenance();
WITH per_day AS (
    SELECT e.user_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
           bit_or(set_bit(repeat('0', 96)::bit(96), floor({INTO_DAY} / 900)::integer, 1)) AS quarters,
           coalesce(sum(e.score::float8 * {FACTOR}) FILTER (WHERE {SCORED}), 0) AS weighted_scores,
           coalesce(sum({FACTOR}) FILTER (WHERE {SCORED}), 0) AS weights
    FROM learning_events e GROUP BY 1, 2
),
per_skill AS (
    SELECT user_id, day, jsonb_object_agg(skill, jsonb_build_array(ws, w)) AS weighted_skills
    FROM (SELECT e.user_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, k.skill,
                 sum(e.score::float8 * {FACTOR}) AS ws, sum({FACTOR}) AS w
          FROM learning_events e CROSS JOIN LATERAL unnest(e.skills) AS k(skill)
          WHERE {SCORED} GROUP BY 1, 2, 3) s
    GROUP BY 1, 2
)
UPDATE learner_daily_activity d
SET quarters = p.quarters, weighted_scores = p.weighted_scores, weights = p.weights,
    weighted_skills = coalesce(k.weighted_skills, '{{}}')
FROM per_day p LEFT JOIN per_skill k ON k.user_id = p.user_id AND k.day = p.day
WHERE d.user_id = p.user_id AND d.day = p.day;
"""

DAYS_DOWN = """
ALTER TABLE learner_daily_activity DROP COLUMN quarters, DROP COLUMN weighted_scores, DROP COLUMN weights,
    DROP COLUMN weighted_skills;
DROP FUNCTION app.add_weight_sums(jsonb, jsonb);
"""


def upgrade() -> None:
    op.execute(DAYS)
    for signature, body in FUNCTIONS.items():
        op.execute(body)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {RUNTIME}")
    # The context call returns one row; the planner's default guess for a function is 1,000.
    op.execute("ALTER FUNCTION app.begin_request(uuid, text) ROWS 1")


def downgrade() -> None:
    op.execute("ALTER FUNCTION app.begin_request(uuid, text) ROWS 1000")
    for signature in reversed(list(FUNCTIONS)):
        op.execute(f"DROP FUNCTION {signature}")
    op.execute(DAYS_DOWN)
