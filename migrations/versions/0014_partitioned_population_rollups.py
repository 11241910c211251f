"""Population rollups in yearly partitions, so that the 7 years of history are dropped by year.

1. population_rollups becomes range-partitioned by year on period_start (partitions
   population_rollups_y<year>). Everything else stays as 0008 and 0009 made it: the columns and
   their checks, the unique key (organization, cohort or none, granularity, period start; NULLS
   NOT DISTINCT, and it holds the partition key), both foreign keys, the (granularity,
   period_start) index, the comments, RLS enabled and forced with the same policies (maintenance
   for the owner, SELECT for the runtime role) and the runtime role's SELECT grant. The rows are
   moved across. Partitions exist for every year of the 7 retained, this year and the next two,
   and any other year a row holds; the partition job keeps that window moving.

2. app.ensure_yearly_partition(parent, year) creates a missing yearly partition of
   aggregated_analytics or population_rollups, with RLS enabled and forced like its parent; the
   one-argument form of 0001 (aggregated_analytics) now calls it. (The rollup statement tells
   its inserts from its updates without xmax, which a row routed into a partition does not carry.)

The downgrade moves the rows back into a plain table made as 0008 and 0009 made it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"
U = "(SELECT app.current_user_id())"
O = "(SELECT app.current_org_id())"
R = "(SELECT app.current_role())"

# The table as 0008 created it and 0009 extended it (capped, last); only the tail differs.
COLUMNS = """
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    trainer_id uuid,
    granularity text NOT NULL CHECK (granularity IN ('daily','weekly','monthly')),
    period_start date NOT NULL,
    period_end date NOT NULL,
    learners integer NOT NULL CHECK (learners > 0),
    active_learners integer NOT NULL CHECK (active_learners >= 0),
    completions bigint NOT NULL CHECK (completions >= 0),
    assessments bigint NOT NULL CHECK (assessments >= 0),
    scored bigint NOT NULL CHECK (scored >= 0),
    score_micros bigint NOT NULL CHECK (score_micros >= 0),
    duration_seconds bigint NOT NULL CHECK (duration_seconds >= 0),
    distribution jsonb NOT NULL CHECK (jsonb_typeof(distribution) = 'object'),
    version integer NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    capped jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(capped) = 'object'),
    CHECK (period_end > period_start),
    FOREIGN KEY (organization_id, trainer_id) REFERENCES users (organization_id, id) ON DELETE CASCADE,
    UNIQUE NULLS NOT DISTINCT (organization_id, trainer_id, granularity, period_start)
"""

COMMENTS = """
CREATE INDEX population_rollups_period_idx ON population_rollups (granularity, period_start);
COMMENT ON TABLE population_rollups IS
    'Rollups of an organization''s learners (trainer_id NULL) or of a trainer''s cohort, per period.';
COMMENT ON COLUMN population_rollups.capped IS
    'Sums with a bounded contribution per learner, for the noisy figures of readers who may not see each learner.';
"""

# 0008's policies and grant on population_rollups, exactly.
SECURITY = f"""
ALTER TABLE population_rollups ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY population_rollups_maintenance ON population_rollups TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
CREATE POLICY population_rollups_select ON population_rollups FOR SELECT TO {RUNTIME}
    USING (organization_id = {O} AND ({R} = 'org_admin' OR ({R} = 'trainer' AND (trainer_id IS NULL OR trainer_id = {U}))));
GRANT SELECT ON population_rollups TO {RUNTIME};
"""

ENSURE = """
CREATE FUNCTION app.ensure_yearly_partition(p_parent text, p_year integer) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    v_name text := format('%s_y%s', p_parent, p_year);
BEGIN
    IF p_parent NOT IN ('aggregated_analytics', 'population_rollups') THEN
        RAISE EXCEPTION 'no yearly partitions for %', p_parent USING ERRCODE = '22023';
    END IF;
    IF to_regclass('public.' || v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE public.%I PARTITION OF public.%I FOR VALUES FROM (%L) TO (%L)',
        v_name, p_parent, make_date(p_year, 1, 1), make_date(p_year + 1, 1, 1));
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', v_name);
    RETURN true;
END $$;
REVOKE ALL ON FUNCTION app.ensure_yearly_partition(text, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION app.ensure_yearly_partition(p_year integer) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, public AS $$
    SELECT app.ensure_yearly_partition('aggregated_analytics', p_year)
$$;
"""

# 0001's one-argument form, as it was.
ENSURE_DOWN = """
CREATE OR REPLACE FUNCTION app.ensure_yearly_partition(p_year integer) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    v_name text := format('aggregated_analytics_y%s', p_year);
BEGIN
    IF to_regclass('public.' || v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE public.%I PARTITION OF public.aggregated_analytics FOR VALUES FROM (%L) TO (%L)',
        v_name, make_date(p_year, 1, 1), make_date(p_year + 1, 1, 1));
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', v_name);
    RETURN true;
END $$;
DROP FUNCTION app.ensure_yearly_partition(text, integer);
"""

# The rows wait in an unlogged copy while the table is made again (the owner sees them only in
# maintenance: RLS is forced on the table).
PARK = """
SELECT app.begin_maintenance();
CREATE UNLOGGED TABLE app.population_rollups_moving AS TABLE public.population_rollups;
DROP TABLE population_rollups;
"""

UNPARK = """
INSERT INTO population_rollups SELECT * FROM app.population_rollups_moving
ORDER BY organization_id, trainer_id, granularity, period_start;
DROP TABLE app.population_rollups_moving;
SELECT set_config('app.maintenance', '', true);
ANALYZE population_rollups;
"""

PARTITIONS = """
SELECT app.ensure_yearly_partition('population_rollups', y)
FROM (
    SELECT generate_series(extract(year FROM now())::int - 7, extract(year FROM now())::int + 2) AS y
    UNION
    SELECT DISTINCT extract(year FROM period_start)::int FROM app.population_rollups_moving
) years
ORDER BY y;
"""


def upgrade() -> None:
    op.execute(ENSURE)
    op.execute(PARK)
    op.execute(f"CREATE TABLE population_rollups ({COLUMNS}) PARTITION BY RANGE (period_start);")
    op.execute(PARTITIONS)
    op.execute(COMMENTS)
    op.execute(UNPARK)
    op.execute(SECURITY)


def downgrade() -> None:
    op.execute(PARK)
    op.execute(f"CREATE TABLE population_rollups ({COLUMNS});")
    op.execute(COMMENTS)
    op.execute(UNPARK)
    op.execute(SECURITY)
    op.execute(ENSURE_DOWN)
