"""Learning activity: the owners of ingested events, the organization leaderboard, the bus client.

Two reads that RLS alone cannot serve, each a SECURITY DEFINER function that returns only what
its caller needs (the request context decides which rows):

- app.activity_owners(user_ids): organization and time zone of the users whose events are being
  ingested or recomputed. A platform `ingest` service may not read `users`, yet streaks and
  active days are counted in the user's time zone. Returns the users of the current
  organization for `ingest` and `org_admin`, the caller's own row for anyone else, every user in
  a maintenance transaction (the stale-analytics job), nothing without a context.
- app.leaderboard(limit): the organization's top learners by points, plus the caller's own
  entry. A learner may read only their own gamification row, so the board is computed here and
  shows rank, display name, points and level: no user ids, e-mails, badges or streaks of others,
  and never another organization. Only users who hold the learner role and have points appear.

Both switch the owner's maintenance visibility on for their one query and restore the previous
value, so a caller that was already in maintenance stays in it.

Also grants the platform bus client (`platform-bus`, every organization) the ingest scope: the
learning-events EventBridge function acts as that client, as the directory's consumer does with
the directory scope. The scope is added to the row if it exists, the row created if not; the
downgrade takes back only what this migration added. A deployment that sets another
BUS_CLIENT_ID registers that id the same way.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"
BUS_CLIENT = "platform-bus"
DESCRIPTION = "EventBridge consumer of the platform bus (learning events, migration 0005)"

UPGRADE = """
CREATE FUNCTION app.activity_owners(p_user_ids uuid[])
RETURNS TABLE (user_id uuid, organization_id uuid, timezone text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_maintenance text := coalesce(current_setting('app.maintenance', true), '');
    v_org uuid := app.current_org_id();
    v_user uuid := app.current_user_id();
    v_role text := app.current_role();
BEGIN
    IF v_maintenance <> 'on' AND v_org IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('app.maintenance', 'on', true);
    RETURN QUERY
    SELECT u.id, u.organization_id, u.timezone
    FROM public.users u
    WHERE u.id = ANY (p_user_ids)
      AND (v_maintenance = 'on'
           OR (u.organization_id = v_org AND (u.id = v_user OR v_role IN ('ingest', 'org_admin'))));
    PERFORM set_config('app.maintenance', v_maintenance, true);
END $$;

CREATE FUNCTION app.leaderboard(p_limit integer)
RETURNS TABLE (rank bigint, display_name text, points integer, level integer, is_caller boolean,
               participants bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_maintenance text := coalesce(current_setting('app.maintenance', true), '');
    v_org uuid := app.current_org_id();
    v_user uuid := app.current_user_id();
BEGIN
    IF v_org IS NULL OR v_user IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('app.maintenance', 'on', true);
    RETURN QUERY
    WITH board AS (
        SELECT g.user_id, u.name, g.points, g.level
        FROM public.gamification g
        JOIN public.users u ON u.id = g.user_id AND u.organization_id = g.organization_id
        WHERE g.organization_id = v_org AND g.role = 'learner' AND g.points > 0
          AND 'learner' = ANY (u.roles)
    ),
    ranked AS (
        SELECT b.user_id, b.name, b.points, b.level,
               rank() OVER (ORDER BY b.points DESC) AS rnk,
               row_number() OVER (ORDER BY b.points DESC, b.name, b.user_id) AS pos,
               count(*) OVER () AS total
        FROM board b
    )
    SELECT r.rnk, r.name, r.points, r.level, r.user_id = v_user, r.total
    FROM ranked r
    WHERE r.pos <= greatest(p_limit, 0) OR r.user_id = v_user
    ORDER BY r.pos;
    PERFORM set_config('app.maintenance', v_maintenance, true);
END $$;

REVOKE ALL ON FUNCTION app.activity_owners(uuid[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION app.leaderboard(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.activity_owners(uuid[]) TO {runtime};
GRANT EXECUTE ON FUNCTION app.leaderboard(integer) TO {runtime};

SELECT app.begin_maintenance();
INSERT INTO service_clients AS c (client_id, organization_id, scopes, description)
VALUES ('{bus}', NULL, ARRAY['ingest'], '{description}')
ON CONFLICT (client_id) DO UPDATE SET scopes = c.scopes || 'ingest'::text
WHERE c.organization_id IS NULL AND NOT 'ingest' = ANY (c.scopes);
"""

DOWNGRADE = """
SELECT app.begin_maintenance();
DELETE FROM service_clients
WHERE client_id = '{bus}' AND scopes = ARRAY['ingest'] AND description = '{description}';
UPDATE service_clients SET scopes = array_remove(scopes, 'ingest')
WHERE client_id = '{bus}' AND 'ingest' = ANY (scopes) AND cardinality(scopes) > 1;
DROP FUNCTION app.leaderboard(integer);
DROP FUNCTION app.activity_owners(uuid[]);
"""


def _sql(template: str) -> str:
    return (template.replace("{runtime}", RUNTIME).replace("{bus}", BUS_CLIENT)
            .replace("{description}", DESCRIPTION))


def upgrade() -> None:
    op.execute(_sql(UPGRADE))


def downgrade() -> None:
    op.execute(_sql(DOWNGRADE))
