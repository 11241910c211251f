"""Hot reads as PL/pgSQL functions: plans cached by the server, the context call in the same statement.

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

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011"
down_revision = "0008"
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


def upgrade() -> None:
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
