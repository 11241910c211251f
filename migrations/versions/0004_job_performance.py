"""Scheduled jobs: a faster comparison refresh, the rollups' input fingerprints, work memory.

1. Comparison refresh: each snapshot's headline value stored once, at write time.

The 0003 view extracted the headline metric from `data` on every refresh. PostgreSQL evaluates
aggregate arguments in the aggregate node, which runs in one process after the (parallel) scan,
so the JSONB lookup, the type test and the numeric-to-float conversion ran several times per row
on the refresh's critical path: at 1,000,000 snapshots it was slower than the seed's plain view.
`analytics.headline_value` (a stored generated column: the same expression, computed once per
write) leaves the refresh a scan of a float column. Semantics are those of 0003 (the number
under the type's headline key; anything that is not a JSON number is ignored), except that a
number beyond the range of double precision is now ignored too, where it failed the refresh.

Adding the column rewrites `analytics` under an ACCESS EXCLUSIVE lock (seconds per million
rows): run it in a quiet window. The view is rebuilt as it was, populated if it was.

2. app.rollup_inputs: per organization, granularity and period, the count and an order-free
digest (XOR of hashes of the event ids) of the learner events the rollup last computed the
period from, and the rollup definition's version. The rollup job recomputes only the periods
whose inputs differ, so a re-run over unchanged data reads the events once and writes nothing.
Owner-only bookkeeping (schema app, no grant to the runtime role, RLS forced like every table).

3. The owner role (the maintenance jobs, in this database) gets 128MB of work memory: the
refresh's sort and the rollups' aggregates of about a million rows then stay in memory. A role
default, not a SET in the job's transaction, so RDS Proxy has nothing to pin.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

HEADLINE_KEY = """CASE analytics_type
            WHEN 'learning_velocity' THEN 'velocity'
            WHEN 'engagement' THEN 'engagement'
            WHEN 'mastery' THEN 'mastery'
            WHEN 'skill_gap' THEN 'gap' END"""

# Shared by upgrade and downgrade: rebuild the view with `select`, keep it populated if it was.
REBUILD = """
DO $$
DECLARE
    v_populated boolean := (SELECT relispopulated FROM pg_class
                            WHERE oid = 'public.comparison_aggregates'::regclass);
BEGIN
    DROP MATERIALIZED VIEW public.comparison_aggregates;
    EXECUTE $view$ CREATE MATERIALIZED VIEW public.comparison_aggregates AS {select} WITH NO DATA $view$;
    CREATE UNIQUE INDEX comparison_aggregates_key
        ON public.comparison_aggregates (organization_id, role, analytics_type);
    REVOKE ALL ON public.comparison_aggregates FROM PUBLIC;
    IF v_populated THEN
        -- RLS is forced on the owner: the view sees the snapshots only in maintenance.
        PERFORM set_config('app.maintenance', 'on', true);
        REFRESH MATERIALIZED VIEW public.comparison_aggregates;
        PERFORM set_config('app.maintenance', '', true);
    END IF;
END $$;
"""

NEW_SELECT = """
SELECT organization_id, role, analytics_type,
       count(*)::integer AS user_count,
       avg(headline_value) AS avg_value,
       percentile_cont(0.25) WITHIN GROUP (ORDER BY headline_value) AS p25,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY headline_value) AS p50,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY headline_value) AS p75,
       now() AS refreshed_at
FROM public.analytics
WHERE updated_at > now() - interval '7 days' AND headline_value IS NOT NULL
GROUP BY organization_id, role, analytics_type
HAVING count(*) >= 10
"""

# 0003's definition, for the downgrade.
OLD_SELECT = f"""
SELECT organization_id, role, analytics_type,
       count(*)::integer AS user_count,
       avg(value) AS avg_value,
       percentile_cont(0.25) WITHIN GROUP (ORDER BY value) AS p25,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS p50,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY value) AS p75,
       now() AS refreshed_at
FROM (
    SELECT organization_id, role, analytics_type,
           CASE WHEN jsonb_typeof(metric) = 'number' THEN metric::text::double precision END AS value
    FROM (
        SELECT organization_id, role, analytics_type, data -> {HEADLINE_KEY} AS metric
        FROM public.analytics
        WHERE updated_at > now() - interval '7 days'
    ) recent
) scored
WHERE value IS NOT NULL
GROUP BY organization_id, role, analytics_type
HAVING count(*) >= 10
"""

ADD_COLUMN = f"""
ALTER TABLE analytics ADD COLUMN headline_value double precision GENERATED ALWAYS AS (
    -- Nested CASE: the cast must never see a value that is not a number (AND has no order).
    CASE WHEN jsonb_typeof(data -> {HEADLINE_KEY}) = 'number' THEN
        CASE WHEN abs((data -> {HEADLINE_KEY})::numeric) <= 1e300
             THEN (data -> {HEADLINE_KEY})::numeric::double precision END
    END
) STORED;
COMMENT ON COLUMN analytics.headline_value IS
    'The number under the type''s headline key in data (velocity, engagement, mastery, gap); NULL if none.';
"""

ROLLUP_INPUTS = """
CREATE TABLE app.rollup_inputs (
    organization_id uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    granularity text NOT NULL CHECK (granularity IN ('daily', 'weekly', 'monthly')),
    period_start date NOT NULL,
    events bigint NOT NULL CHECK (events > 0),
    digest bigint NOT NULL,
    version integer NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, granularity, period_start)
);
COMMENT ON TABLE app.rollup_inputs IS
    'What each aggregated_analytics period was last rolled up from (count and digest of its learner events).';
ALTER TABLE app.rollup_inputs ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY rollup_inputs_maintenance ON app.rollup_inputs TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
REVOKE ALL ON app.rollup_inputs FROM PUBLIC;
"""

OWNER_WORK_MEM = """
DO $$
BEGIN
    EXECUTE format('ALTER ROLE CURRENT_USER IN DATABASE %I SET work_mem = %L', current_database(), '{value}');
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'cannot set work_mem for the owner role; set it as an administrator';
END $$;
"""

OWNER_WORK_MEM_RESET = """
DO $$
BEGIN
    EXECUTE format('ALTER ROLE CURRENT_USER IN DATABASE %I RESET work_mem', current_database());
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(ADD_COLUMN)
    op.execute(REBUILD.replace("{select}", NEW_SELECT))
    op.execute(ROLLUP_INPUTS)
    op.execute(OWNER_WORK_MEM.replace("{value}", "128MB"))


def downgrade() -> None:
    op.execute(OWNER_WORK_MEM_RESET)
    op.execute("DROP TABLE app.rollup_inputs")
    op.execute(REBUILD.replace("{select}", OLD_SELECT))
    op.execute("ALTER TABLE analytics DROP COLUMN headline_value")
