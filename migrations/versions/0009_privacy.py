"""Privacy and hardening: noisy peer comparison, request limits the runtime role cannot loosen.

1. Peer comparison is released with noise (docs/SECURITY.md, "Peer comparison"). The materialized
   view `comparison_aggregates` now holds, per organization, role and type, the exact sufficient
   statistics of the recent headline values that lie in their documented range: `user_count`,
   `out_of_range` (values left out, reported by the job), the clamped sum in grid units, a sparse
   histogram (bins, counts) over the release range and a digest of the group's state (XOR of
   hashes of (user, value)). The runtime role still cannot read it. The refresh job turns each
   group of at least 10 into a release in `app.comparison_releases` (noisy average and
   percentiles), drawing fresh noise only when the digest changed and while the group's privacy
   budget (`app.comparison_spend`, per rolling window) allows; `app.peer_comparison` returns
   releases only. `app.headline_ranges` holds the ranges (ms8.domain.bounds; a test keeps them
   equal).

2. The request context functions fix the limits that matter for every request transaction:
   statement_timeout, idle_in_transaction_session_timeout and row_security, transaction-locally
   (set_config(..., true): nothing for RDS Proxy or PgBouncer to pin, no startup options), so a
   role default the runtime role sets on itself (ALTER ROLE ms8_app SET ...) has no effect on the
   service's requests. (Read/write mode and isolation level are fixed by the BEGIN the service
   sends.) The 0002 functions are kept under new names and wrapped.

3. Population rollups (0008) as a trainer reads the organization's: each row also stores
   `capped`, sums whose every learner contributes a bounded amount (learners, active learners,
   completions capped per day of the period, minutes capped per day, learners with a scored
   assessment and the sum of their mean scores), from which the read side releases noisy figures.
   The noise of a row is drawn from a seed tied to the row's state: `app.release_seeds(keys)`
   (SECURITY DEFINER) hashes each key with a secret only the owner can read
   (`app.release_secret`), so re-reading a row gives the same figures and a changed row new ones.

4. Erasure reaches every rollup: deleting learner days (a user's erasure cascades to them)
   records the organization and the span of days in `app.rollup_pending`; the rollup job
   recomputes those periods on its next run, whatever its usual window, and clears them.

5. The runtime role may not create temporary objects (TEMPORARY revoked from PUBLIC on this
   database; the service never uses them): with no CREATE anywhere either, it can create no
   object that could shadow a table through a search_path it sets on itself.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"

# The ranges of ms8.domain.bounds at this revision (tests/db/test_privacy_schema.py compares).
RANGES = """
CREATE TABLE app.headline_ranges (
    analytics_type text PRIMARY KEY,
    valid_low double precision NOT NULL,
    valid_high double precision NOT NULL,
    release_low double precision NOT NULL,
    release_high double precision NOT NULL,
    CHECK (valid_low <= valid_high AND release_low < release_high)
);
INSERT INTO app.headline_ranges VALUES
    ('learning_velocity', 0, 1000, 0, 10),
    ('engagement', 0, 1, 0, 1),
    ('mastery', 0, 1, 0, 1),
    ('skill_gap', 0, 1, 0, 1);
ALTER TABLE app.headline_ranges ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY headline_ranges_maintenance ON app.headline_ranges TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
REVOKE ALL ON app.headline_ranges FROM PUBLIC;
"""

# Grid: the release sums values in units of 1/GRID of the release range (exact integer sums);
# BINS: the histogram the percentiles are read from. Both are ms8.domain.privacy's.
GRID = 10000
BINS = 20

NEW_SELECT = f"""
WITH recent AS (
    SELECT a.organization_id, a.role, a.analytics_type, a.user_id, a.headline_value AS v,
           a.headline_value BETWEEN r.valid_low AND r.valid_high AS ok,
           r.release_low AS lo, r.release_high AS hi
    FROM public.analytics a
    JOIN app.headline_ranges r ON r.analytics_type = a.analytics_type
    WHERE a.updated_at > now() - interval '7 days' AND a.headline_value IS NOT NULL
),
binned AS (
    SELECT organization_id, role, analytics_type, ok,
           CASE WHEN ok THEN least(width_bucket(least(greatest(v, lo), hi), lo, hi, {BINS}), {BINS}) END AS bin,
           count(*) AS n,
           sum(round((least(greatest(v, lo), hi) - lo) / (hi - lo) * {GRID})) FILTER (WHERE ok) AS units,
           bit_xor(hashtextextended(user_id::text || ':' || v::text, 0)) FILTER (WHERE ok) AS digest
    FROM recent
    GROUP BY 1, 2, 3, 4, 5
)
SELECT organization_id, role, analytics_type,
       coalesce(sum(n) FILTER (WHERE ok), 0)::integer AS user_count,
       coalesce(sum(n) FILTER (WHERE NOT ok), 0)::integer AS out_of_range,
       coalesce(sum(units), 0)::bigint AS sum_units,
       coalesce(array_agg(bin ORDER BY bin) FILTER (WHERE ok), '{{}}')::integer[] AS bins,
       coalesce(array_agg(n ORDER BY bin) FILTER (WHERE ok), '{{}}')::integer[] AS counts,
       coalesce(bit_xor(digest), 0) AS digest,
       now() AS refreshed_at
FROM binned
GROUP BY organization_id, role, analytics_type
"""

# 0004's definition, for the downgrade.
OLD_SELECT = """
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

# Rebuild the view with `select`, populated if it was (as in 0004).
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
        PERFORM set_config('app.maintenance', 'on', true);
        REFRESH MATERIALIZED VIEW public.comparison_aggregates;
        PERFORM set_config('app.maintenance', '', true);
    END IF;
END $$;
"""

RELEASES = """
CREATE TABLE app.comparison_releases (
    organization_id uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    role text NOT NULL,
    analytics_type text NOT NULL,
    digest bigint NOT NULL,
    user_count integer NOT NULL CHECK (user_count >= 10),
    avg_value double precision NOT NULL,
    p25 double precision NOT NULL,
    p50 double precision NOT NULL,
    p75 double precision NOT NULL,
    epsilon double precision NOT NULL CHECK (epsilon > 0),
    released_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, role, analytics_type)
);
COMMENT ON TABLE app.comparison_releases IS
    'The published peer groups: noisy average and percentiles, and the state (digest) they were drawn for.';
CREATE TABLE app.comparison_spend (
    organization_id uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    role text NOT NULL,
    analytics_type text NOT NULL,
    released_at timestamptz NOT NULL,
    epsilon double precision NOT NULL CHECK (epsilon > 0)
);
CREATE INDEX comparison_spend_group ON app.comparison_spend (organization_id, role, analytics_type, released_at);
COMMENT ON TABLE app.comparison_spend IS
    'Privacy budget ledger: one row per fresh release of a peer group (the epsilon it spent).';
ALTER TABLE app.comparison_releases ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE app.comparison_spend ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY comparison_releases_maintenance ON app.comparison_releases TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
CREATE POLICY comparison_spend_maintenance ON app.comparison_spend TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
REVOKE ALL ON app.comparison_releases, app.comparison_spend FROM PUBLIC;

CREATE OR REPLACE FUNCTION app.peer_comparison(p_type text)
RETURNS TABLE (analytics_type text, user_count integer, avg_value double precision,
               p25 double precision, p50 double precision, p75 double precision,
               refreshed_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- The releases are owner rows under forced RLS: visible here only in maintenance mode,
    -- switched on for this one read and off again (the caller's context is untouched).
    PERFORM set_config('app.maintenance', 'on', true);
    RETURN QUERY
    SELECT r.analytics_type, r.user_count, r.avg_value, r.p25, r.p50, r.p75, r.released_at
    FROM app.comparison_releases r
    WHERE r.organization_id = app.current_org_id()
      AND r.role = app.current_role()
      AND (p_type IS NULL OR r.analytics_type = p_type)
      AND r.user_count >= 10
    ORDER BY r.analytics_type;
    PERFORM set_config('app.maintenance', '', true);
END $$;
"""

OLD_PEER_COMPARISON = """
CREATE OR REPLACE FUNCTION app.peer_comparison(p_type text)
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
"""

# The limits of every request transaction, whatever the role's defaults say.
LIMITS = f"""
CREATE FUNCTION app.apply_request_limits() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT set_config('statement_timeout', '15s', true),
           set_config('idle_in_transaction_session_timeout', '30s', true),
           set_config('row_security', 'on', true);
$$;
REVOKE ALL ON FUNCTION app.apply_request_limits() FROM PUBLIC;

ALTER FUNCTION app.begin_request(uuid, text) RENAME TO begin_request_0002;
ALTER FUNCTION app.begin_service_request(text, text, uuid) RENAME TO begin_service_request_0002;
REVOKE ALL ON FUNCTION app.begin_request_0002(uuid, text) FROM {RUNTIME};
REVOKE ALL ON FUNCTION app.begin_service_request_0002(text, text, uuid) FROM {RUNTIME};

CREATE FUNCTION app.begin_request(p_user_id uuid, p_role text)
RETURNS TABLE (user_id uuid, organization_id uuid, roles text[], active_role text, timezone text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM app.apply_request_limits();
    RETURN QUERY SELECT * FROM app.begin_request_0002(p_user_id, p_role);
END $$;

CREATE FUNCTION app.begin_service_request(p_client_id text, p_scope text, p_org_id uuid)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM app.apply_request_limits();
    RETURN app.begin_service_request_0002(p_client_id, p_scope, p_org_id);
END $$;

REVOKE ALL ON FUNCTION app.begin_request(uuid, text), app.begin_service_request(text, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.begin_request(uuid, text), app.begin_service_request(text, text, uuid) TO {RUNTIME};
"""

UNLIMITS = f"""
DROP FUNCTION app.begin_request(uuid, text);
DROP FUNCTION app.begin_service_request(text, text, uuid);
ALTER FUNCTION app.begin_request_0002(uuid, text) RENAME TO begin_request;
ALTER FUNCTION app.begin_service_request_0002(text, text, uuid) RENAME TO begin_service_request;
GRANT EXECUTE ON FUNCTION app.begin_request(uuid, text), app.begin_service_request(text, text, uuid) TO {RUNTIME};
DROP FUNCTION app.apply_request_limits();
"""

ROLLUP_RELEASE = f"""
ALTER TABLE population_rollups ADD COLUMN capped jsonb NOT NULL DEFAULT '{{}}'
    CHECK (jsonb_typeof(capped) = 'object');
COMMENT ON COLUMN population_rollups.capped IS
    'Sums with a bounded contribution per learner, for the noisy figures of readers who may not see each learner.';

CREATE TABLE app.release_secret (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    secret text NOT NULL
);
INSERT INTO app.release_secret (secret)
VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
ALTER TABLE app.release_secret ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY release_secret_maintenance ON app.release_secret TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
REVOKE ALL ON app.release_secret FROM PUBLIC;

-- One 32-byte seed per key: sha256(secret || key). The keys name a row and its state.
CREATE FUNCTION app.release_seeds(p_keys text[]) RETURNS bytea[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_secret text;
    v_out bytea[];
BEGIN
    PERFORM set_config('app.maintenance', 'on', true);
    SELECT s.secret INTO v_secret FROM app.release_secret s;
    PERFORM set_config('app.maintenance', '', true);
    SELECT coalesce(array_agg(sha256(convert_to(v_secret || k, 'UTF8')) ORDER BY i), '{{}}')
    INTO v_out FROM unnest(p_keys) WITH ORDINALITY AS x(k, i);
    RETURN v_out;
END $$;
REVOKE ALL ON FUNCTION app.release_seeds(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.release_seeds(text[]) TO {RUNTIME};

CREATE TABLE app.rollup_pending (
    organization_id uuid NOT NULL,
    first_day date NOT NULL,
    last_day date NOT NULL,
    noted_at timestamptz NOT NULL DEFAULT now(),
    CHECK (first_day <= last_day)
);
COMMENT ON TABLE app.rollup_pending IS
    'Spans of learner days deleted (erasure) whose rollups the next rollup run recomputes.';
ALTER TABLE app.rollup_pending ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY rollup_pending_note ON app.rollup_pending FOR INSERT TO CURRENT_USER WITH CHECK (true);
CREATE POLICY rollup_pending_maintenance ON app.rollup_pending TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
REVOKE ALL ON app.rollup_pending FROM PUBLIC;

CREATE FUNCTION app.note_deleted_days() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO app.rollup_pending (organization_id, first_day, last_day)
    SELECT g.organization_id, min(g.day), max(g.day) FROM gone g GROUP BY g.organization_id;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION app.note_deleted_days() FROM PUBLIC;
CREATE TRIGGER learner_days_deleted AFTER DELETE ON public.learner_daily_activity
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION app.note_deleted_days();
"""

ROLLUP_RELEASE_DOWN = """
DROP TRIGGER learner_days_deleted ON public.learner_daily_activity;
DROP FUNCTION app.note_deleted_days();
DROP TABLE app.rollup_pending;
DROP FUNCTION app.release_seeds(text[]);
DROP TABLE app.release_secret;
ALTER TABLE population_rollups DROP COLUMN capped;
"""

NO_TEMP = """
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'cannot revoke TEMPORARY on this database; revoke it as its owner';
END $$;
"""

TEMP_BACK = """
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(RANGES)
    op.execute(REBUILD.replace("{select}", NEW_SELECT))
    op.execute(RELEASES)
    op.execute(LIMITS)
    op.execute(ROLLUP_RELEASE)
    op.execute(NO_TEMP)


def downgrade() -> None:
    op.execute(TEMP_BACK)
    op.execute(ROLLUP_RELEASE_DOWN)
    op.execute(UNLIMITS)
    op.execute(OLD_PEER_COMPARISON)
    op.execute("DROP TABLE app.comparison_spend, app.comparison_releases")
    op.execute(REBUILD.replace("{select}", OLD_SELECT))
    op.execute("DROP TABLE app.headline_ranges")
