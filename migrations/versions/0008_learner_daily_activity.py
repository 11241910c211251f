"""Learner days and population rollups: what rollups, cohort views and the at-risk rule read.

1. learner_daily_activity: one row per learner and UTC day with activity (the UTC date of
   occurred_at), the sums the analytics need, so that rollups and cohort views read days instead
   of raw events. Ingest maintains it in the request's transaction (one INSERT ... ON CONFLICT DO
   UPDATE over the events the batch actually inserted), so a replayed batch adds nothing. Rows go
   with their user (the foreign key cascades: erasure removes them). Scores are kept in
   micro-units (integers): sums are exact in any order, so a re-run of a rollup computes
   bit-identical figures. `skills` is {skill: [scored events, score micro-units]};
   app.add_skill_sums adds two of them (used by the upsert). RLS as learning_events: own rows,
   a trainer's assigned learners, the org admin's organization, the ingest service's organization.
   Back-filled here from the learning events that exist.

2. population_rollups: the organization's and each trainer cohort's rollups per granularity
   (daily, ISO weekly, monthly) and period, written by the rollup job from the learner days. One
   row per (organization, cohort or none, granularity, period start); trainer_id NULL is the
   organization. RLS: an org admin reads the organization's rows; a trainer the organization's
   and their own cohort's. The job (owner, maintenance) writes; the runtime role only reads.
   `suppressed` is false until small-cell suppression is applied to what a caller reads.

3. app.population_rollup_inputs: per organization, granularity and period, a fingerprint of what
   its rows were last computed from (how many learner days and memberships, an order-free digest
   of them, the rollup version). The job recomputes only the periods whose fingerprint differs,
   so an unchanged re-run reads the days once and writes nothing. Owner-only bookkeeping.

4. app.refresh_skill_gaps(): after an org admin changes a skill target, every learner of the
   organization with a mastery snapshot gets their skill_gap snapshot recomputed from it, in the
   same request (one statement). SECURITY DEFINER because the snapshots are the learners' rows
   (an org admin may not write them); it computes the data itself (the definition of
   ms8.domain.metrics.skill_gap_from_mastery, held equal to it by a test), for the caller's
   organization only, and only for an org admin.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"
U = "(SELECT app.current_user_id())"
O = "(SELECT app.current_org_id())"
R = "(SELECT app.current_role())"
ASSIGNED = f"(SELECT ta.learner_id FROM trainer_assignments ta WHERE ta.trainer_id = {U})"

# The verbs as the analytics vocabulary has them at this revision (a migration is frozen).
COMPLETION_VERBS = "ARRAY['completed']"
ASSESSMENT_VERBS = "ARRAY['passed','failed','attempted']"

TABLES = f"""
CREATE TABLE learner_daily_activity (
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    day date NOT NULL,
    events integer NOT NULL CHECK (events > 0),
    completions integer NOT NULL CHECK (completions >= 0),
    completed_objects text[] NOT NULL DEFAULT '{{}}',
    assessments integer NOT NULL CHECK (assessments >= 0),
    scored integer NOT NULL CHECK (scored >= 0),
    score_micros bigint NOT NULL CHECK (score_micros >= 0),
    passed integer NOT NULL CHECK (passed >= 0),
    duration_seconds bigint NOT NULL CHECK (duration_seconds >= 0),
    sessions integer NOT NULL CHECK (sessions >= 0),
    skills jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(skills) = 'object'),
    last_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, day),
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX learner_daily_activity_org_day_idx ON learner_daily_activity (organization_id, day);
COMMENT ON TABLE learner_daily_activity IS
    'Per learner and UTC day with activity: counts and sums of that day''s learning events (maintained by ingest).';
COMMENT ON COLUMN learner_daily_activity.completed_objects IS 'Distinct objects completed that day, sorted.';
COMMENT ON COLUMN learner_daily_activity.skills IS '{{skill: [scored assessment events, score sum in micro-units]}}';

CREATE FUNCTION app.add_skill_sums(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog AS $$
    SELECT coalesce(jsonb_object_agg(k, jsonb_build_array(n, m)), '{{}}'::jsonb)
    FROM (SELECT k, sum((v ->> 0)::bigint) AS n, sum((v ->> 1)::bigint) AS m
          FROM (SELECT * FROM jsonb_each(a) UNION ALL SELECT * FROM jsonb_each(b)) AS s(k, v)
          GROUP BY k) t
$$;
REVOKE ALL ON FUNCTION app.add_skill_sums(jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.add_skill_sums(jsonb, jsonb) TO {RUNTIME};

CREATE TABLE population_rollups (
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
    CHECK (period_end > period_start),
    FOREIGN KEY (organization_id, trainer_id) REFERENCES users (organization_id, id) ON DELETE CASCADE,
    UNIQUE NULLS NOT DISTINCT (organization_id, trainer_id, granularity, period_start)
);
CREATE INDEX population_rollups_period_idx ON population_rollups (granularity, period_start);

CREATE TABLE app.population_rollup_inputs (
    organization_id uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    granularity text NOT NULL CHECK (granularity IN ('daily', 'weekly', 'monthly')),
    period_start date NOT NULL,
    inputs bigint NOT NULL CHECK (inputs > 0),
    digest bigint NOT NULL,
    version integer NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, granularity, period_start)
);
ALTER TABLE app.population_rollup_inputs ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY population_rollup_inputs_maintenance ON app.population_rollup_inputs TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
REVOKE ALL ON app.population_rollup_inputs FROM PUBLIC;
COMMENT ON TABLE population_rollups IS
    'Rollups of an organization''s learners (trainer_id NULL) or of a trainer''s cohort, per period.';
"""

SKILL_GAPS = f"""
CREATE FUNCTION app.refresh_skill_gaps() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_maintenance text := coalesce(current_setting('app.maintenance', true), '');
    v_org uuid := app.current_org_id();
    v_written integer;
BEGIN
    IF v_org IS NULL OR app.current_role() IS DISTINCT FROM 'org_admin' THEN
        RAISE EXCEPTION 'only an org admin refreshes the skill gaps' USING ERRCODE = '42501';
    END IF;
    PERFORM set_config('app.maintenance', 'on', true);
    WITH targets AS (
        SELECT t.skill, t.target_level::float8 AS target FROM public.skill_targets t WHERE t.organization_id = v_org
    ),
    gaps AS (
        SELECT m.user_id, m.organization_id, m.definition_version, m.data_through, k.skill,
               round(greatest(0, k.target - coalesce(
                   CASE WHEN jsonb_typeof(m.data -> 'skills' -> k.skill) = 'number'
                        THEN (m.data -> 'skills' ->> k.skill)::float8 END, 0))::numeric, 4) AS gap
        FROM public.analytics m
        JOIN public.users u ON u.id = m.user_id AND u.organization_id = m.organization_id
        CROSS JOIN targets k
        WHERE m.organization_id = v_org AND m.role = 'learner' AND m.analytics_type = 'mastery'
          AND 'learner' = ANY (u.roles)
    ),
    per_user AS (
        SELECT m.user_id, m.organization_id, m.definition_version, m.window_days, m.data_through,
               CASE WHEN count(g.skill) = 0
                    THEN jsonb_build_object('gap', NULL, 'skills', '{{}}'::jsonb, 'targeted_skills', 0)
                    ELSE jsonb_build_object(
                        'gap', trim_scale(round(avg(g.gap), 4)),
                        'skills', jsonb_object_agg(g.skill, trim_scale(g.gap)) FILTER (WHERE g.skill IS NOT NULL),
                        'targeted_skills', count(g.skill)) END AS data
        FROM public.analytics m
        JOIN public.users u ON u.id = m.user_id AND u.organization_id = m.organization_id
        LEFT JOIN gaps g ON g.user_id = m.user_id
        WHERE m.organization_id = v_org AND m.role = 'learner' AND m.analytics_type = 'mastery'
          AND 'learner' = ANY (u.roles)
        GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO public.analytics AS a (user_id, organization_id, role, analytics_type, data, source,
                                       definition_version, window_days, data_through)
    SELECT p.user_id, p.organization_id, 'learner', 'skill_gap', p.data, 'computed', p.definition_version,
           p.window_days, p.data_through
    FROM per_user p
    ORDER BY p.user_id
    ON CONFLICT (user_id, role, analytics_type) DO UPDATE
    SET data = EXCLUDED.data, source = EXCLUDED.source, definition_version = EXCLUDED.definition_version,
        window_days = EXCLUDED.window_days, data_through = EXCLUDED.data_through, version = a.version + 1
    WHERE a.data IS DISTINCT FROM EXCLUDED.data;
    GET DIAGNOSTICS v_written = ROW_COUNT;
    PERFORM set_config('app.maintenance', v_maintenance, true);
    RETURN v_written;
END $$;
REVOKE ALL ON FUNCTION app.refresh_skill_gaps() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.refresh_skill_gaps() TO {RUNTIME};
"""

POLICIES = {
    "learner_daily_activity": {
        "SELECT": f"organization_id = {O} AND (user_id = {U} OR {R} IN ('org_admin', 'ingest') "
                  f"OR ({R} = 'trainer' AND user_id IN {ASSIGNED}))",
        "INSERT": f"organization_id = {O} AND ((user_id = {U} AND {R} IN ('learner', 'trainer')) "
                  f"OR {R} = 'ingest')",
        "UPDATE": f"organization_id = {O} AND ((user_id = {U} AND {R} IN ('learner', 'trainer')) "
                  f"OR {R} = 'ingest')",
    },
    "population_rollups": {
        "SELECT": f"organization_id = {O} AND ({R} = 'org_admin' "
                  f"OR ({R} = 'trainer' AND (trainer_id IS NULL OR trainer_id = {U})))",
    },
}
GRANTS = {"learner_daily_activity": "SELECT, INSERT, UPDATE", "population_rollups": "SELECT"}

BACKFILL = f"""
SELECT app.begin_maintenance();
INSERT INTO learner_daily_activity AS d
    (organization_id, user_id, day, events, completions, completed_objects, assessments, scored,
     score_micros, passed, duration_seconds, sessions, skills, last_at)
SELECT e.organization_id, e.user_id, (e.occurred_at AT TIME ZONE 'UTC')::date,
       count(*),
       count(*) FILTER (WHERE e.verb = ANY ({COMPLETION_VERBS})),
       coalesce(array_agg(DISTINCT e.object_id ORDER BY e.object_id)
                FILTER (WHERE e.verb = ANY ({COMPLETION_VERBS})), '{{}}'),
       count(*) FILTER (WHERE e.verb = ANY ({ASSESSMENT_VERBS})),
       count(e.score) FILTER (WHERE e.verb = ANY ({ASSESSMENT_VERBS})),
       coalesce(sum(round(e.score::float8 * 1e6)::bigint) FILTER (WHERE e.verb = ANY ({ASSESSMENT_VERBS})), 0),
       count(*) FILTER (WHERE e.verb = 'passed'),
       coalesce(sum(e.duration_seconds), 0),
       count(*) FILTER (WHERE e.verb = 'session'),
       '{{}}'::jsonb,
       max(e.occurred_at)
FROM learning_events e
GROUP BY 1, 2, 3;
UPDATE learner_daily_activity d SET skills = s.skills
FROM (
    SELECT user_id, day, jsonb_object_agg(skill, jsonb_build_array(n, m)) AS skills
    FROM (
        SELECT e.user_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, k.skill,
               count(*) AS n, sum(round(e.score::float8 * 1e6)::bigint) AS m
        FROM learning_events e CROSS JOIN LATERAL unnest(e.skills) AS k(skill)
        WHERE e.score IS NOT NULL AND e.verb = ANY ({ASSESSMENT_VERBS})
        GROUP BY 1, 2, 3
    ) per_skill
    GROUP BY 1, 2
) s
WHERE d.user_id = s.user_id AND d.day = s.day;
SELECT set_config('app.maintenance', '', true);
"""


def _policy(table: str, command: str, expr: str) -> str:
    name = f"{table}_{command.lower()}"
    if command == "INSERT":
        clause = f"WITH CHECK ({expr})"
    elif command == "UPDATE":
        clause = f"USING ({expr}) WITH CHECK ({expr})"
    else:
        clause = f"USING ({expr})"
    return f"CREATE POLICY {name} ON {table} FOR {command} TO {RUNTIME} {clause};"


def upgrade() -> None:
    op.execute(TABLES)
    for table, commands in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_maintenance ON {table} TO CURRENT_USER "
            "USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()))"
        )
        for command, expr in commands.items():
            op.execute(_policy(table, command, expr))
        op.execute(f"GRANT {GRANTS[table]} ON {table} TO {RUNTIME}")
    op.execute(SKILL_GAPS)
    op.execute(BACKFILL)


def downgrade() -> None:
    op.execute("DROP FUNCTION app.refresh_skill_gaps()")
    op.execute("DROP TABLE app.population_rollup_inputs")
    op.execute("DROP TABLE population_rollups")
    op.execute("DROP TABLE learner_daily_activity")
    op.execute("DROP FUNCTION app.add_skill_sums(jsonb, jsonb)")
