"""A platform's analytics batch in one call: the service context and the upsert in one statement.

app.request_service_upsert_analytics(p_client_id, p_scope, p_org_id, p_rows) does what
`PUT /v1/analytics` with a platform token did in a transaction of three round trips (BEGIN and
app.begin_service_request; the upsert; COMMIT): it calls app.begin_service_request (the same
checks, errors MS402-MS405 and settings), then upserts the rows of `p_rows` (a JSON array of
{user_id, role, analytics_type, data}) into the organization that call resolved, as the client's
own snapshots (source 'client'; definition_version, window_days and data_through NULL), in key
order, each update raising `version`; and returns how many rows were inserted and how many
updated (a row an upsert inserted has no xmax).

The application sends it as one statement in autocommit: one round trip, and the statement is
its own transaction, so the batch is written whole or not at all and the context ends with it
(nothing a transaction pooler would pin). PL/pgSQL keeps the upsert's plan for the session, where
the statement sent by the client was parsed, analysed and planned under the RLS policies on every
request (~0.8 ms of the server's CPU). SECURITY INVOKER: the runtime role's policies and the
foreign key to users confine the rows exactly as before. Returns a row of the named type
app.request_service_upsert_analytics_row (the server caches a named type's columns). The
request's statement_timeout, set by app.begin_service_request, covers the statements after this
one, not this one (a timeout is armed when a statement starts): the function bounds its lock
waits with its own lock_timeout of 15 s (a function's SET holds while it runs).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"
SIGNATURE = "app.request_service_upsert_analytics(text, text, uuid, jsonb)"

UPGRADE = f"""
CREATE TYPE app.request_service_upsert_analytics_row AS (inserted bigint, updated bigint);
CREATE FUNCTION app.request_service_upsert_analytics(p_client_id text, p_scope text, p_org_id uuid,
                                                     p_rows jsonb)
RETURNS SETOF app.request_service_upsert_analytics_row
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp SET lock_timeout = '15s'
ROWS 1 AS $$
DECLARE
    v_org uuid;
BEGIN
    v_org := app.begin_service_request(p_client_id, p_scope, p_org_id);
    RETURN QUERY
    WITH w AS (
        INSERT INTO public.analytics AS a (user_id, organization_id, role, analytics_type, data, source,
                                           definition_version, window_days, data_through)
        SELECT x.user_id, v_org, x.role, x.analytics_type, x.data, 'client', NULL, NULL, NULL
        FROM jsonb_to_recordset(p_rows) AS x(user_id uuid, role text, analytics_type text, data jsonb)
        ORDER BY x.user_id, x.role, x.analytics_type
        ON CONFLICT (user_id, role, analytics_type) DO UPDATE
        SET data = EXCLUDED.data, source = EXCLUDED.source,
            definition_version = EXCLUDED.definition_version, window_days = EXCLUDED.window_days,
            data_through = EXCLUDED.data_through, version = a.version + 1
        RETURNING (a.xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE w.inserted), count(*) FILTER (WHERE NOT w.inserted) FROM w;
END $$;
REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {RUNTIME};
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    op.execute("DROP TYPE app.request_service_upsert_analytics_row")
