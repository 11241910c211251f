"""Each hot read is one call of one function; the request context costs fewer statements.

1. app.begin_request and app.begin_service_request do their work in one PL/pgSQL body each:
   the request limits (statement and idle timeouts, row security on) and the maintenance flag
   the user or client lookup needs in one set_config statement, then the lookup. For a user the
   lookup's own row clears the flag and sets the context (two statements in all); for a service
   one more statement does. The same checks, errors (SQLSTATEs MS400-MS405) and settings as
   before. (They were wrappers calling app.apply_request_limits and the 0002 bodies, which
   issued each set_config as a statement of its own.) The 0002 bodies are left in place,
   unused, for the downgrade. app.begin_request returns rows of the named type
   app.request_caller (the same columns), so it is dropped and created again.

2. For every read function app.read_<x> of 0011, app.request_<x>(p_user, p_role, <its
   arguments>): the context call and the read in one statement whose plan the server caches:

       SELECT c.user_id, c.organization_id, c.roles, c.active_role, c.timezone, r.*
       FROM app.begin_request(p_user, p_role) c LEFT JOIN LATERAL (<the read>) r ON true

   where the read is the 0011 function's query written out (own analytics, the summary, me,
   gamification: one PL/pgSQL function runs instead of two) or a call of that function.

   The application sends `SELECT * FROM app.request_<read>(...)`: a statement that costs the
   server next to nothing to parse and plan, where the same join sent by the client was parsed,
   analysed and planned on every request (about a third of the server's CPU per read). The
   functions are SECURITY INVOKER, so the read functions and the runtime role's RLS policies
   confine the rows exactly as before; the first row always carries the caller (the read's
   columns are NULL when it found nothing). Each returns rows of its own named type
   app.request_<x>_row.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"

# What every request transaction sets before anything else (0009's app.apply_request_limits).
LIMITS = """set_config('statement_timeout', '15s', true),
            set_config('idle_in_transaction_session_timeout', '30s', true),
            set_config('row_security', 'on', true)"""

CALLER = "user_id uuid, organization_id uuid, roles text[], active_role text, timezone text"

CONTEXT = f"""
CREATE TYPE app.request_caller AS ({CALLER});

DROP FUNCTION app.begin_request(uuid, text);
CREATE FUNCTION app.begin_request(p_user_id uuid, p_role text)
RETURNS SETOF app.request_caller
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp ROWS 1 AS $$
DECLARE
    v_org uuid;
    v_roles text[];
    v_tz text;
    v_role text;
    v_set text;
BEGIN
    PERFORM {LIMITS},
            set_config('app.maintenance', 'on', true);
    -- The row's columns are computed once it has passed the maintenance policy, so the same
    -- statement ends maintenance and sets the context. A refused request raises below, which
    -- ends the transaction and every setting with it.
    SELECT u.organization_id, u.roles, u.timezone, r.role,
           concat(set_config('app.maintenance', '', true),
                  set_config('app.current_user_id', p_user_id::text, true),
                  set_config('app.current_org_id', u.organization_id::text, true),
                  set_config('app.current_role', coalesce(r.role, ''), true))
    INTO v_org, v_roles, v_tz, v_role, v_set
    FROM public.users u
    CROSS JOIN LATERAL (SELECT CASE WHEN coalesce(p_role, '') = ''
                                    THEN CASE WHEN cardinality(u.roles) = 1 THEN u.roles[1] END
                                    WHEN p_role = ANY (u.roles) THEN p_role END AS role) r
    WHERE u.id = p_user_id;
    IF v_org IS NULL THEN
        PERFORM set_config('app.maintenance', '', true);
        RAISE EXCEPTION 'user % is not provisioned in this service', p_user_id
            USING ERRCODE = 'MS401';
    END IF;
    IF v_role IS NULL THEN
        IF coalesce(p_role, '') = '' THEN
            RAISE EXCEPTION 'the user holds several roles (%): name one in X-Active-Role',
                array_to_string(v_roles, ', ') USING ERRCODE = 'MS400';
        END IF;
        RAISE EXCEPTION 'role % is not held by this user', p_role USING ERRCODE = 'MS403';
    END IF;
    RETURN NEXT ROW(p_user_id, v_org, v_roles, v_role, v_tz)::app.request_caller;
END $$;
REVOKE ALL ON FUNCTION app.begin_request(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.begin_request(uuid, text) TO {RUNTIME};

CREATE OR REPLACE FUNCTION app.begin_service_request(p_client_id text, p_scope text, p_org_id uuid)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_org uuid;
    v_scopes text[];
BEGIN
    PERFORM {LIMITS},
            set_config('app.maintenance', 'on', true);
    SELECT c.organization_id, c.scopes INTO v_org, v_scopes
    FROM public.service_clients c WHERE c.client_id = p_client_id;
    PERFORM set_config('app.maintenance', '', true);
    IF v_scopes IS NULL THEN
        RAISE EXCEPTION 'service client % is not registered', p_client_id USING ERRCODE = 'MS402';
    END IF;
    IF NOT (p_scope = ANY (v_scopes)) THEN
        RAISE EXCEPTION 'scope % is not granted to this client', p_scope USING ERRCODE = 'MS404';
    END IF;
    IF v_org IS NOT NULL AND p_org_id IS NOT NULL AND p_org_id <> v_org THEN
        RAISE EXCEPTION 'this client may not act in that organization' USING ERRCODE = 'MS404';
    END IF;
    v_org := coalesce(v_org, p_org_id);
    IF p_scope = 'ingest' AND v_org IS NULL THEN
        RAISE EXCEPTION 'an ingest request names its organization' USING ERRCODE = 'MS405';
    END IF;
    PERFORM set_config('app.current_user_id', '', true),
            set_config('app.current_org_id', coalesce(v_org::text, ''), true),
            set_config('app.current_role', p_scope, true);
    RETURN v_org;
END $$;
"""

# 0009's definitions, restored by the downgrade.
CONTEXT_DOWN = f"""
DROP FUNCTION app.begin_request(uuid, text);
CREATE FUNCTION app.begin_request(p_user_id uuid, p_role text)
RETURNS TABLE ({CALLER})
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp ROWS 1 AS $$
BEGIN
    PERFORM app.apply_request_limits();
    RETURN QUERY SELECT * FROM app.begin_request_0002(p_user_id, p_role);
END $$;
REVOKE ALL ON FUNCTION app.begin_request(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.begin_request(uuid, text) TO {RUNTIME};
DROP TYPE app.request_caller;

CREATE OR REPLACE FUNCTION app.begin_service_request(p_client_id text, p_scope text, p_org_id uuid)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM app.apply_request_limits();
    RETURN app.begin_service_request_0002(p_client_id, p_scope, p_org_id);
END $$;
"""

ANALYTICS_COLUMNS = """id uuid, user_id uuid, role text, analytics_type text, data jsonb, source text,
    definition_version integer, window_days integer, data_through timestamptz, version bigint,
    updated_at timestamptz"""
SELECT_ANALYTICS = """a.id, a.user_id, a.role, a.analytics_type, a.data, a.source,
               a.definition_version, a.window_days, a.data_through, a.version, a.updated_at"""

# request function -> (its arguments after the user and the role, the read's columns, the read).
# The read is a subquery with a reference to the context row `c` (c.user_id, c.active_role):
# the simple reads are written out, so one function runs instead of two; the others call their
# 0011 function. OFFSET 0 keeps a written-out read a subquery of its own: it stays on the inner
# side of the join, so it runs after the context row exists.
READS: dict[str, tuple[list[tuple[str, str]], str, str]] = {
    "request_analytics": (
        [("p_type", "text"), ("p_limit", "integer")], ANALYTICS_COLUMNS,
        f"""SELECT {SELECT_ANALYTICS}
        FROM analytics a
        WHERE a.user_id = c.user_id AND a.role = c.active_role
          AND (p_type IS NULL OR a.analytics_type = p_type)
        ORDER BY a.updated_at DESC
        LIMIT p_limit OFFSET 0""",
    ),
    "request_analytics_summary": (
        [], f"total bigint, {ANALYTICS_COLUMNS}",
        f"""SELECT count(*) OVER (), {SELECT_ANALYTICS}
        FROM analytics a
        WHERE a.user_id = c.user_id AND a.role = c.active_role
        ORDER BY a.updated_at DESC
        LIMIT 1 OFFSET 0""",
    ),
    "request_me": (
        [], "id uuid, organization_id uuid, email text, name text, roles text[], timezone text",
        """SELECT u.id, u.organization_id, u.email, u.name, u.roles, u.timezone
        FROM users u WHERE u.id = c.user_id OFFSET 0""",
    ),
    "request_gamification": (
        [], "points integer, level integer, badges jsonb, streaks jsonb, updated_at timestamptz",
        """SELECT g.points, g.level, g.badges, g.streaks, g.updated_at
        FROM gamification g WHERE g.user_id = c.user_id AND g.role = 'learner' OFFSET 0""",
    ),
    "request_user_analytics": (
        [("p_target", "uuid"), ("p_type", "text"), ("p_limit", "integer")],
        f"visible boolean, {ANALYTICS_COLUMNS}",
        "SELECT * FROM app.read_user_analytics(c.user_id, c.active_role, p_target, p_type, p_limit)",
    ),
    "request_leaderboard": (
        [("p_limit", "integer")],
        "rank bigint, display_name text, points integer, level integer, is_caller boolean, participants bigint",
        "SELECT * FROM app.read_leaderboard(c.user_id, c.active_role, p_limit)",
    ),
    "request_comparison": (
        [("p_type", "text")],
        "analytics_type text, own_data jsonb, user_count integer, avg_value double precision, "
        "p25 double precision, p50 double precision, p75 double precision, refreshed_at timestamptz",
        "SELECT * FROM app.read_comparison(c.user_id, c.active_role, p_type)",
    ),
}

# The caller's columns come first, prefixed: the read's own columns may share their names. Each
# function returns rows of a named type: the server looks a named type's columns up in a cache,
# where it would rebuild the columns of RETURNS TABLE from the function's definition on every call
# (the same for app.begin_request's app.request_caller).
CALLER_COLUMNS = (
    "caller_user_id uuid, caller_organization_id uuid, caller_roles text[], caller_active_role text, "
    "caller_timezone text"
)


def _request_function(name: str, args: list[tuple[str, str]], columns: str, read: str) -> tuple[str, str]:
    """(signature, CREATE statements) of app.<name> and its row type app.<name>_row."""
    params = ", ".join(["p_user uuid", "p_role text", *(f"{n} {t}" for n, t in args)])
    types = ", ".join(["uuid", "text", *(t for _, t in args)])
    body = f"""
CREATE TYPE app.{name}_row AS ({CALLER_COLUMNS}, {columns});
CREATE FUNCTION app.{name}({params})
RETURNS SETOF app.{name}_row
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT c.user_id, c.organization_id, c.roles, c.active_role, c.timezone, r.*
    FROM app.begin_request(p_user, p_role) AS c
    LEFT JOIN LATERAL (
        {read}
    ) AS r ON true;
END $$;
"""
    return f"app.{name}({types})", body


def upgrade() -> None:
    op.execute(CONTEXT)
    for name, (args, columns, read) in READS.items():
        signature, body = _request_function(name, args, columns, read)
        op.execute(body)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {RUNTIME}")


def downgrade() -> None:
    for name, (args, columns, read) in reversed(READS.items()):
        signature, _ = _request_function(name, args, columns, read)
        op.execute(f"DROP FUNCTION {signature}")
        op.execute(f"DROP TYPE app.{name}_row")
    op.execute(CONTEXT_DOWN)
