"""Schema: tables, constraints, indexes, partition helpers and the initial partitions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ROLES = "ARRAY['learner','trainer','org_admin']::text[]"
ROLE_CHECK = "CHECK (role IN ('learner','trainer','org_admin'))"
TYPE_CHECK = (
    "CHECK (analytics_type IN ('learning_velocity','engagement','mastery','skill_gap'))"
)
STAMPS = """
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()"""
# Every per-user table references users through (organization_id, id): a row can never name a
# user of another organization, whatever the writer claims.
USER_FK = "FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE"

UPGRADE = f"""
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'Service functions: request context, RLS helpers, partitions.';

CREATE FUNCTION app.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TABLE organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kpis text[] NOT NULL DEFAULT '{{}}',
    value_propositions text[] NOT NULL DEFAULT '{{}}',
    source_version bigint NOT NULL DEFAULT 0,{STAMPS}
);

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    roles text[] NOT NULL CHECK (cardinality(roles) >= 1 AND roles <@ {ROLES}),
    timezone text NOT NULL DEFAULT 'UTC',
    source_version bigint NOT NULL DEFAULT 0,{STAMPS},
    UNIQUE (organization_id, id)
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Erased or deleted users: an older directory event must not bring them back.
CREATE TABLE user_tombstones (
    user_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    source_version bigint NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE analytics (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    role text NOT NULL {ROLE_CHECK},
    analytics_type text NOT NULL {TYPE_CHECK},
    data jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    source text NOT NULL DEFAULT 'client' CHECK (source IN ('client','computed')),
    definition_version integer,
    window_days integer CHECK (window_days > 0),
    data_through timestamptz,
    version bigint NOT NULL DEFAULT 1,{STAMPS},
    UNIQUE (user_id, role, analytics_type),
    {USER_FK}
);
CREATE INDEX analytics_user_role_recent_idx ON analytics (user_id, role, updated_at DESC);
CREATE INDEX analytics_org_idx ON analytics (organization_id);
-- The seed's partial index had a NOW() predicate (not IMMUTABLE, so invalid): index plainly.
CREATE INDEX analytics_updated_at_idx ON analytics (updated_at);

CREATE TABLE aggregated_analytics (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    granularity text NOT NULL CHECK (granularity IN ('daily','weekly','monthly')),
    role text NOT NULL {ROLE_CHECK},
    analytics_type text NOT NULL {TYPE_CHECK},
    period_start date NOT NULL,
    period_end date NOT NULL,
    user_count integer NOT NULL CHECK (user_count >= 0),
    data jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),{STAMPS},
    CHECK (period_end > period_start),
    PRIMARY KEY (id, period_start),
    UNIQUE (organization_id, granularity, analytics_type, role, period_start)
) PARTITION BY RANGE (period_start);
CREATE INDEX aggregated_org_period_idx ON aggregated_analytics (organization_id, period_start, period_end);
CREATE INDEX aggregated_granularity_type_idx ON aggregated_analytics (granularity, analytics_type);

CREATE TABLE reports (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    role text NOT NULL {ROLE_CHECK},
    format text NOT NULL CHECK (format IN ('pdf','csv','excel','json')),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','ready','failed')),
    params jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(params) = 'object'),
    s3_key text,
    size_bytes bigint CHECK (size_bytes >= 0),
    checksum_sha256 text,
    error text,{STAMPS},
    CHECK (status <> 'ready' OR (s3_key IS NOT NULL AND size_bytes IS NOT NULL)),
    {USER_FK}
);
CREATE INDEX reports_user_role_idx ON reports (user_id, role, created_at DESC);
CREATE INDEX reports_org_idx ON reports (organization_id, created_at DESC);
CREATE INDEX reports_created_at_idx ON reports (created_at);

-- Audit of every download link handed out: who, when, until when.
CREATE TABLE report_links (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    report_id uuid NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    {USER_FK}
);
CREATE INDEX report_links_report_idx ON report_links (report_id);
CREATE INDEX report_links_user_idx ON report_links (user_id);

CREATE TABLE gamification (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    role text NOT NULL {ROLE_CHECK},
    points integer NOT NULL DEFAULT 0 CHECK (points >= 0),
    level integer NOT NULL DEFAULT 1 CHECK (level >= 1),
    badges jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(badges) = 'array'),
    streaks jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(streaks) = 'object'),{STAMPS},
    UNIQUE (user_id, role),
    {USER_FK}
);
CREATE INDEX gamification_user_idx ON gamification (user_id);
CREATE INDEX gamification_org_points_idx ON gamification (organization_id, points DESC);

-- One row per award: the key makes awarding idempotent per event and defeats repeated events.
CREATE TABLE points_ledger (
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    award_key text NOT NULL,
    event_id uuid,
    points integer NOT NULL CHECK (points > 0),
    occurred_at timestamptz NOT NULL,
    awarded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, award_key),
    {USER_FK}
);
CREATE INDEX points_ledger_user_occurred_idx ON points_ledger (user_id, occurred_at);

CREATE TABLE learning_events (
    event_id uuid NOT NULL,
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    verb text NOT NULL
        CHECK (verb IN ('completed','passed','failed','attempted','progressed','session')),
    object_id text NOT NULL CHECK (length(object_id) BETWEEN 1 AND 200),
    object_type text NOT NULL CHECK (length(object_type) BETWEEN 1 AND 50),
    skills text[] NOT NULL DEFAULT '{{}}',
    score real CHECK (score BETWEEN 0 AND 1),
    success boolean,
    duration_seconds integer CHECK (duration_seconds >= 0),
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, occurred_at),
    {USER_FK}
) PARTITION BY RANGE (occurred_at);
CREATE INDEX learning_events_user_time_idx ON learning_events (user_id, occurred_at);
CREATE INDEX learning_events_org_time_idx ON learning_events (organization_id, occurred_at);

CREATE TABLE trainer_assignments (
    organization_id uuid NOT NULL,
    trainer_id uuid NOT NULL,
    learner_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trainer_id, learner_id),
    CHECK (trainer_id <> learner_id),
    FOREIGN KEY (organization_id, trainer_id) REFERENCES users (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, learner_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX trainer_assignments_learner_idx ON trainer_assignments (learner_id);
CREATE INDEX trainer_assignments_org_idx ON trainer_assignments (organization_id);

CREATE TABLE skill_targets (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    skill text NOT NULL CHECK (length(skill) BETWEEN 1 AND 100),
    target_level real NOT NULL CHECK (target_level BETWEEN 0 AND 1),{STAMPS},
    PRIMARY KEY (organization_id, skill)
);

-- Platform services (client-credential tokens) and what they may do; bound to one
-- organization, or platform-wide when organization_id is NULL.
CREATE TABLE service_clients (
    client_id text PRIMARY KEY CHECK (length(client_id) BETWEEN 1 AND 200),
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    scopes text[] NOT NULL CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY['ingest','directory']::text[]),
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Partitions. Each new partition gets RLS enabled and forced like its parent, so reaching it
-- directly never shows more than the parent would.
CREATE FUNCTION app.ensure_yearly_partition(p_year integer) RETURNS boolean
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

CREATE FUNCTION app.ensure_monthly_partition(p_month date) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    v_start date := date_trunc('month', p_month)::date;
    v_name text := format('learning_events_m%s', to_char(v_start, 'YYYY_MM'));
BEGIN
    IF to_regclass('public.' || v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Month bounds in UTC, whatever the session's time zone.
    EXECUTE format(
        'CREATE TABLE public.%I PARTITION OF public.learning_events FOR VALUES FROM (%L) TO (%L)',
        v_name, v_start::text || ' 00:00:00+00', (v_start + interval '1 month')::date::text || ' 00:00:00+00');
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', v_name);
    RETURN true;
END $$;

-- Initial partitions: the 7 retained years of history and two ahead; 13 months of events
-- and three ahead. The partition job keeps the window moving.
SELECT app.ensure_yearly_partition(y)
FROM generate_series(extract(year FROM now())::int - 7, extract(year FROM now())::int + 2) AS y;
SELECT app.ensure_monthly_partition(m::date)
FROM generate_series(date_trunc('month', now()) - interval '13 months',
                     date_trunc('month', now()) + interval '3 months', interval '1 month') AS m;
"""

TRIGGER_TABLES = [
    "organizations", "users", "analytics", "aggregated_analytics", "reports", "gamification",
    "skill_targets",
]

DOWNGRADE = """
DROP TABLE IF EXISTS service_clients, skill_targets, trainer_assignments, learning_events,
    points_ledger, gamification, report_links, reports, aggregated_analytics, analytics,
    user_tombstones, users, organizations CASCADE;
DROP SCHEMA IF EXISTS app CASCADE;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    for table in TRIGGER_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at()"
        )


def downgrade() -> None:
    op.execute(DOWNGRADE)
