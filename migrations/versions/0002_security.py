"""Security: the runtime role, least grants, RLS policies and the request-context functions.

The policy matrix is in docs/SECURITY.md. Settings are read fail-closed with
current_setting(name, true) (unset or '' gives NULL, which matches nothing), and every policy
wraps them in a scalar sub-select so PostgreSQL evaluates them once per statement (an InitPlan),
not once per row.

Besides the three user roles, the active role can be a platform service's scope: `ingest`
(writes events and computed analytics for one organization) or `directory` (provisions
organizations and users: every organization for a platform-wide client, only its own for a
client bound to one). The owner is subject to RLS too (FORCE); it sees rows only inside a
transaction that declared maintenance (app.begin_maintenance()), which is what jobs do.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"

U = "(SELECT app.current_user_id())"
O = "(SELECT app.current_org_id())"
R = "(SELECT app.current_role())"
ASSIGNED = f"(SELECT ta.learner_id FROM trainer_assignments ta WHERE ta.trainer_id = {U})"


def _directory(column: str) -> str:
    """The directory scope: every organization for a platform-wide client, else its own only."""
    return f"({R} = 'directory' AND ({O} IS NULL OR {column} = {O}))"


DIR_ORG = _directory("id")
DIR = _directory("organization_id")

FUNCTIONS = """
CREATE FUNCTION app.current_user_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.current_user_id', true), '')::uuid $$;
CREATE FUNCTION app.current_org_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.current_org_id', true), '')::uuid $$;
CREATE FUNCTION app.current_role() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.current_role', true), '') $$;
CREATE FUNCTION app.in_maintenance() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(current_setting('app.maintenance', true), '') = 'on' $$;

-- Jobs (as the owner) call this first: rows become visible to the owner for this transaction.
CREATE FUNCTION app.begin_maintenance() RETURNS void LANGUAGE sql AS
$$ SELECT set_config('app.maintenance', 'on', true) $$;

-- The request context: one call, one round trip, inside the request's transaction.
-- SQLSTATEs: MS401 unknown user, MS403 role not held, MS400 role required (several held).
CREATE FUNCTION app.begin_request(p_user_id uuid, p_role text)
RETURNS TABLE (user_id uuid, organization_id uuid, roles text[], active_role text, timezone text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_org uuid;
    v_roles text[];
    v_tz text;
    v_role text;
BEGIN
    PERFORM set_config('app.maintenance', 'on', true);
    SELECT u.organization_id, u.roles, u.timezone INTO v_org, v_roles, v_tz
    FROM public.users u WHERE u.id = p_user_id;
    PERFORM set_config('app.maintenance', '', true);
    IF v_org IS NULL THEN
        RAISE EXCEPTION 'user % is not provisioned in this service', p_user_id
            USING ERRCODE = 'MS401';
    END IF;
    IF coalesce(p_role, '') = '' THEN
        IF cardinality(v_roles) <> 1 THEN
            RAISE EXCEPTION 'the user holds several roles (%): name one in X-Active-Role',
                array_to_string(v_roles, ', ') USING ERRCODE = 'MS400';
        END IF;
        v_role := v_roles[1];
    ELSIF p_role = ANY (v_roles) THEN
        v_role := p_role;
    ELSE
        RAISE EXCEPTION 'role % is not held by this user', p_role USING ERRCODE = 'MS403';
    END IF;
    PERFORM set_config('app.current_user_id', p_user_id::text, true),
            set_config('app.current_org_id', v_org::text, true),
            set_config('app.current_role', v_role, true);
    RETURN QUERY SELECT p_user_id, v_org, v_roles, v_role, v_tz;
END $$;

-- The context of a platform service acting with one scope. A client bound to an organization
-- can act only there; a platform-wide client names the organization (or none, for directory).
-- SQLSTATEs: MS402 unknown client, MS404 scope not granted or another organization,
-- MS405 organization required.
CREATE FUNCTION app.begin_service_request(p_client_id text, p_scope text, p_org_id uuid)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_org uuid;
    v_scopes text[];
BEGIN
    PERFORM set_config('app.maintenance', 'on', true);
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

# table -> {command: expression}; USING and WITH CHECK are the same expression.
POLICIES: dict[str, dict[str, str]] = {
    "organizations": {
        "SELECT": f"{DIR_ORG} OR id = {O}",
        "INSERT": DIR_ORG,
        "UPDATE": DIR_ORG,
    },
    "users": {
        "SELECT": f"{DIR} OR (organization_id = {O} AND (id = {U} "
                  f"OR {R} = 'org_admin' OR ({R} = 'trainer' AND id IN {ASSIGNED})))",
        "INSERT": DIR,
        "UPDATE": f"{DIR} OR (organization_id = {O} AND {R} = 'org_admin')",
        "DELETE": f"{DIR} OR (organization_id = {O} AND {R} = 'org_admin')",
    },
    "user_tombstones": {
        "SELECT": f"{DIR} OR (organization_id = {O} AND {R} = 'org_admin')",
        "INSERT": f"{DIR} OR (organization_id = {O} AND {R} = 'org_admin')",
        "UPDATE": f"{DIR} OR (organization_id = {O} AND {R} = 'org_admin')",
    },
    "analytics": {
        "SELECT": f"organization_id = {O} AND (user_id = {U} OR {R} IN ('org_admin', 'ingest') "
                  f"OR ({R} = 'trainer' AND user_id IN {ASSIGNED}))",
        "INSERT": f"organization_id = {O} AND ((user_id = {U} AND role = {R}) OR {R} = 'ingest')",
        "UPDATE": f"organization_id = {O} AND ((user_id = {U} AND role = {R}) OR {R} = 'ingest')",
        "DELETE": f"organization_id = {O} AND {R} = 'org_admin'",
    },
    "gamification": {
        "SELECT": f"organization_id = {O} AND (user_id = {U} OR {R} IN ('org_admin', 'ingest') "
                  f"OR ({R} = 'trainer' AND user_id IN {ASSIGNED}))",
        "INSERT": f"organization_id = {O} AND ((user_id = {U} AND role = {R}) OR {R} = 'ingest')",
        "UPDATE": f"organization_id = {O} AND ((user_id = {U} AND role = {R}) OR {R} = 'ingest')",
        "DELETE": f"organization_id = {O} AND {R} = 'org_admin'",
    },
    "points_ledger": {
        "SELECT": f"organization_id = {O} AND (user_id = {U} OR {R} IN ('org_admin', 'ingest'))",
        "INSERT": f"organization_id = {O} AND (user_id = {U} OR {R} = 'ingest')",
    },
    "learning_events": {
        "SELECT": f"organization_id = {O} AND (user_id = {U} OR {R} IN ('org_admin', 'ingest') "
                  f"OR ({R} = 'trainer' AND user_id IN {ASSIGNED}))",
        "INSERT": f"organization_id = {O} AND ((user_id = {U} AND {R} IN ('learner', 'trainer')) "
                  f"OR {R} = 'ingest')",
    },
    "reports": {
        "SELECT": f"{DIR} OR (organization_id = {O} AND (user_id = {U} OR {R} = 'org_admin'))",
        "INSERT": f"organization_id = {O} AND user_id = {U} AND role = {R}",
        "UPDATE": f"organization_id = {O} AND user_id = {U}",
    },
    "report_links": {
        "SELECT": f"organization_id = {O} AND (user_id = {U} OR {R} = 'org_admin')",
        # A link is recorded only for a report the caller may read (reports' own RLS applies).
        "INSERT": f"organization_id = {O} AND user_id = {U} AND report_id IN (SELECT r.id FROM reports r)",
    },
    "aggregated_analytics": {
        "SELECT": f"organization_id = {O} AND {R} IN ('trainer', 'org_admin')",
    },
    "trainer_assignments": {
        "SELECT": f"{DIR} OR (organization_id = {O} "
                  f"AND (trainer_id = {U} OR learner_id = {U} OR {R} = 'org_admin'))",
        "INSERT": f"organization_id = {O} AND {R} = 'org_admin'",
        "DELETE": f"{DIR} OR (organization_id = {O} AND {R} = 'org_admin')",
    },
    "skill_targets": {
        "SELECT": f"organization_id = {O}",
        "INSERT": f"organization_id = {O} AND {R} = 'org_admin'",
        "UPDATE": f"organization_id = {O} AND {R} = 'org_admin'",
        "DELETE": f"organization_id = {O} AND {R} = 'org_admin'",
    },
    "service_clients": {},
}

GRANTS = {
    "organizations": "SELECT, INSERT, UPDATE",
    "users": "SELECT, INSERT, UPDATE, DELETE",
    "user_tombstones": "SELECT, INSERT, UPDATE",
    "analytics": "SELECT, INSERT, UPDATE, DELETE",
    "gamification": "SELECT, INSERT, UPDATE, DELETE",
    "points_ledger": "SELECT, INSERT",
    "learning_events": "SELECT, INSERT",
    "reports": "SELECT, INSERT, UPDATE",
    "report_links": "SELECT, INSERT",
    "aggregated_analytics": "SELECT",
    "trainer_assignments": "SELECT, INSERT, DELETE",
    "skill_targets": "SELECT, INSERT, UPDATE, DELETE",
}

RUNTIME_FUNCTIONS = [
    "app.current_user_id()", "app.current_org_id()", "app.current_role()",
    "app.begin_request(uuid, text)", "app.begin_service_request(text, text, uuid)",
]


def _policy_sql(table: str, command: str, expr: str) -> str:
    name = f"{table}_{command.lower()}"
    if command == "INSERT":
        clause = f"WITH CHECK ({expr})"
    elif command == "UPDATE":
        clause = f"USING ({expr}) WITH CHECK ({expr})"
    else:
        clause = f"USING ({expr})"
    return f"CREATE POLICY {name} ON {table} FOR {command} TO {RUNTIME} {clause};"


def upgrade() -> None:
    # The runtime login role: owns nothing, no BYPASSRLS. Created here when the migrating owner
    # may (CREATEROLE); otherwise it must exist already. Its password is set outside migrations.
    op.execute(f"""
    DO $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{RUNTIME}') THEN
            CREATE ROLE {RUNTIME} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
        END IF;
    END $$;
    """)
    op.execute(FUNCTIONS)
    op.execute("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA app FROM PUBLIC")
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA app, public TO {RUNTIME}")
    for fn in RUNTIME_FUNCTIONS:
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {RUNTIME}")
    for table, commands in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_maintenance ON {table} TO CURRENT_USER "
            "USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()))"
        )
        for command, expr in commands.items():
            op.execute(_policy_sql(table, command, expr))
    for table, privileges in GRANTS.items():
        op.execute(f"GRANT {privileges} ON {table} TO {RUNTIME}")
    # Existing partitions: RLS like their parents (the partition helpers do this for new ones).
    op.execute("""
    DO $$
    DECLARE r record;
    BEGIN
        FOR r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent IN ('public.aggregated_analytics'::regclass,
                                       'public.learning_events'::regclass)
        LOOP
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', r.relname);
        END LOOP;
    END $$;
    """)
    # Bounded work per statement and no idle transactions holding locks (per database).
    op.execute(f"""
    DO $$
    BEGIN
        EXECUTE format('ALTER ROLE {RUNTIME} IN DATABASE %I SET statement_timeout = %L',
                       current_database(), '15s');
        EXECUTE format('ALTER ROLE {RUNTIME} IN DATABASE %I SET idle_in_transaction_session_timeout = %L',
                       current_database(), '30s');
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot set timeouts for {RUNTIME}; set them as an administrator';
    END $$;
    """)


def downgrade() -> None:
    for table in GRANTS:
        op.execute(f"REVOKE ALL ON {table} FROM {RUNTIME}")
    for table, commands in POLICIES.items():
        op.execute(f"DROP POLICY IF EXISTS {table}_maintenance ON {table}")
        for command in commands:
            op.execute(f"DROP POLICY IF EXISTS {table}_{command.lower()} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY")
    op.execute(f"""
    DO $$
    BEGIN
        EXECUTE format('ALTER ROLE {RUNTIME} IN DATABASE %I RESET ALL', current_database());
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END $$;
    """)
    op.execute(f"REVOKE USAGE ON SCHEMA app, public FROM {RUNTIME}")
    op.execute("""
    DROP FUNCTION app.begin_service_request(text, text, uuid);
    DROP FUNCTION app.begin_request(uuid, text);
    DROP FUNCTION app.begin_maintenance();
    DROP FUNCTION app.in_maintenance();
    DROP FUNCTION app.current_role();
    DROP FUNCTION app.current_org_id();
    DROP FUNCTION app.current_user_id();
    """)
    # The runtime role is cluster-wide and may serve other databases: it is left in place.
