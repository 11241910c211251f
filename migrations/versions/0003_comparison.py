"""Peer comparison: the k-anonymous materialized view and the only way to read it.

A materialized view has no RLS. Only groups of at least 10 distinct users are materialized, and
the runtime role cannot select from the view at all: it calls app.peer_comparison(), which
returns rows of the caller's organization and active role only.

Each analytics type has one headline metric in its `data` (velocity, engagement, mastery, gap);
a value that is not a JSON number is ignored rather than breaking the refresh. (user_id, role,
analytics_type) is unique in analytics, so count(*) of a group is its number of distinct users.

The view is created empty; the refresh job populates it (and refreshes it CONCURRENTLY after).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE MATERIALIZED VIEW comparison_aggregates AS
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
        SELECT organization_id, role, analytics_type,
               data -> CASE analytics_type
                   WHEN 'learning_velocity' THEN 'velocity'
                   WHEN 'engagement' THEN 'engagement'
                   WHEN 'mastery' THEN 'mastery'
                   WHEN 'skill_gap' THEN 'gap' END AS metric
        FROM analytics
        WHERE updated_at > now() - interval '7 days'
    ) recent
) scored
WHERE value IS NOT NULL
GROUP BY organization_id, role, analytics_type
HAVING count(*) >= 10
WITH NO DATA;

CREATE UNIQUE INDEX comparison_aggregates_key
    ON comparison_aggregates (organization_id, role, analytics_type);

CREATE FUNCTION app.peer_comparison(p_type text)
RETURNS TABLE (analytics_type text, user_count integer, avg_value double precision,
               p25 double precision, p50 double precision, p75 double precision,
               refreshed_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT (SELECT c.relispopulated FROM pg_class c
            WHERE c.oid = 'public.comparison_aggregates'::regclass) THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT a.analytics_type, a.user_count, a.avg_value, a.p25, a.p50, a.p75, a.refreshed_at
    FROM public.comparison_aggregates a
    WHERE a.organization_id = app.current_org_id()
      AND a.role = app.current_role()
      AND (p_type IS NULL OR a.analytics_type = p_type)
      AND a.user_count >= 10
    ORDER BY a.analytics_type;
END $$;
REVOKE ALL ON FUNCTION app.peer_comparison(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.peer_comparison(text) TO ms8_app;
REVOKE ALL ON comparison_aggregates FROM PUBLIC;
"""

DOWNGRADE = """
DROP FUNCTION app.peer_comparison(text);
DROP MATERIALIZED VIEW comparison_aggregates;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
