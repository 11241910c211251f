"""xAPI: the credentials learning platforms send statements with, and the statements as sent.

- xapi_credentials: Basic-auth credentials of an organization (key + hashed secret). A platform
  declares the account `homePage` its actors use on its credential. Revoked rows stay (revoked_at)
  so a key is never reused. The table is read only through app.begin_xapi_request(), which also
  refuses a revoked key, so revocation takes effect on the next request.
- xapi_statements: every stored statement as it will be returned (json: as produced, no binary
  conversion on the hot path), its stored time, the
  voided flag, the statement a StatementRef object targets (a query also returns the statements
  that target a statement it matches), the tokens the GET filters use (one GIN index), the content hash that keeps
  statements re-sent without an id from being stored twice, and the learning event it was mapped
  to (or, while the actor is not a user yet, the actor keys that will map it later).
- xapi_attachments: the contents of attachments sent in multipart requests, by SHA-256.
- learning_events: verbs from xAPI (answered, scored, experienced, and `activity` for any
  other) and DELETE for an xAPI request, which removes the event of a voided statement.

An xAPI request acts with the `ingest` role in its credential's organization (so the analytics it
updates follow the ingest policies), with the credential's key in `app.xapi_key`: only such a
request reads or writes xapi_statements, and only its organization's.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"
OLD_VERBS = "'completed','passed','failed','attempted','progressed','session'"
NEW_VERBS = OLD_VERBS + ",'answered','scored','experienced','activity'"
O = "(SELECT app.current_org_id())"
X = f"organization_id = {O} AND (SELECT app.current_xapi_key()) IS NOT NULL"

UPGRADE = f"""
CREATE TABLE xapi_credentials (
    key text PRIMARY KEY CHECK (key ~ '^[A-Za-z0-9_-]{{8,64}}$'),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    secret_hash text NOT NULL,
    home_page text CHECK (home_page ~ '^[A-Za-z][A-Za-z0-9+.-]*:'),
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX xapi_credentials_org_idx ON xapi_credentials (organization_id);

CREATE TABLE xapi_statements (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    statement_id uuid NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    -- json, not jsonb: kept as produced (key order too) and not converted on the hot path; the
    -- filters never look inside it (they use tokens).
    statement json NOT NULL,
    stored timestamptz NOT NULL,
    credential_key text NOT NULL,
    voided boolean NOT NULL DEFAULT false,
    voids uuid,
    ref uuid,
    tokens text[] NOT NULL DEFAULT '{{}}',
    content_hash bytea,
    actor_keys text[] NOT NULL DEFAULT '{{}}',
    event jsonb,
    user_id uuid,
    event_occurred_at timestamptz,
    PRIMARY KEY (organization_id, statement_id),
    -- Erasing a user erases the statements that were counted as theirs (by cascade, as every
    -- other row of the user); a statement waiting for its user has none yet.
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX xapi_statements_user_idx ON xapi_statements (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX xapi_statements_seq_idx ON xapi_statements (organization_id, seq);
CREATE INDEX xapi_statements_ref_idx ON xapi_statements (organization_id, ref) WHERE ref IS NOT NULL;
CREATE INDEX xapi_statements_tokens_idx ON xapi_statements USING gin (tokens);
CREATE UNIQUE INDEX xapi_statements_hash_idx ON xapi_statements (organization_id, content_hash)
    WHERE content_hash IS NOT NULL;
CREATE INDEX xapi_statements_pending_idx ON xapi_statements USING gin (actor_keys)
    WHERE user_id IS NULL AND event IS NOT NULL;

-- Attachment contents sent in multipart requests, by SHA-256, once per organization.
CREATE TABLE xapi_attachments (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    sha2 text NOT NULL CHECK (length(sha2) BETWEEN 1 AND 200),
    content_type text NOT NULL,
    content bytea NOT NULL,
    stored timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, sha2)
);

CREATE FUNCTION app.current_xapi_key() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.xapi_key', true), '') $$;

-- The context of an xAPI request: the credential's organization with the ingest role. Returns
-- what the caller verifies the presented secret against; an unknown or revoked key raises MS406.
CREATE FUNCTION app.begin_xapi_request(p_key text)
RETURNS TABLE (organization_id uuid, secret_hash text, home_page text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_org uuid;
    v_hash text;
    v_home text;
BEGIN
    PERFORM app.apply_request_limits();  -- migration 0009: the limits of every request
    PERFORM set_config('app.maintenance', 'on', true);
    SELECT c.organization_id, c.secret_hash, c.home_page INTO v_org, v_hash, v_home
    FROM public.xapi_credentials c WHERE c.key = p_key AND c.revoked_at IS NULL;
    PERFORM set_config('app.maintenance', '', true);
    IF v_org IS NULL THEN
        RAISE EXCEPTION 'unknown or revoked xAPI credential' USING ERRCODE = 'MS406';
    END IF;
    PERFORM set_config('app.current_user_id', '', true),
            set_config('app.current_org_id', v_org::text, true),
            set_config('app.current_role', 'ingest', true),
            set_config('app.xapi_key', p_key, true);
    RETURN QUERY SELECT v_org, v_hash, v_home;
END $$;

-- Users of the xAPI request's organization by id or e-mail (all of them when p_all, for
-- mbox_sha1sum actors, whose hash is computed by the caller): the ingest role may not read users.
CREATE FUNCTION app.xapi_users(p_ids uuid[], p_emails text[], p_all boolean)
RETURNS TABLE (user_id uuid, email text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_org uuid := app.current_org_id();
BEGIN
    IF app.current_xapi_key() IS NULL OR v_org IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('app.maintenance', 'on', true);
    RETURN QUERY
    SELECT u.id, lower(u.email) FROM public.users u
    WHERE u.organization_id = v_org
      AND (p_all OR u.id = ANY (p_ids) OR lower(u.email) = ANY (p_emails));
    PERFORM set_config('app.maintenance', '', true);
END $$;

-- Statements stored before their actor was a user: when the directory writes the user (or in
-- maintenance), the pending statements whose actor keys match become the user's learning events.
-- p_keys[i] holds user i's keys joined by U+001F. Returns the events inserted.
CREATE FUNCTION app.xapi_claim_pending(p_users uuid[], p_keys text[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_maintenance text := coalesce(current_setting('app.maintenance', true), '');
    v_org uuid := app.current_org_id();
    v_count integer;
BEGIN
    IF v_maintenance <> 'on' AND app.current_role() IS DISTINCT FROM 'directory' THEN
        RETURN 0;
    END IF;
    PERFORM set_config('app.maintenance', 'on', true);
    WITH wanted AS (
        SELECT u.id, u.organization_id, string_to_array(k.keys, E'\\x1f') AS keys
        FROM unnest(p_users, p_keys) AS k(user_id, keys)
        JOIN public.users u ON u.id = k.user_id
        WHERE v_maintenance = 'on' OR v_org IS NULL OR u.organization_id = v_org
    ), claimed AS (
        UPDATE public.xapi_statements s SET user_id = w.id
        FROM wanted w
        WHERE s.organization_id = w.organization_id AND s.user_id IS NULL AND s.event IS NOT NULL
          AND NOT s.voided AND s.actor_keys && w.keys
        RETURNING s.statement_id, s.user_id, s.organization_id, s.event, s.event_occurred_at
    ), inserted AS (
        INSERT INTO public.learning_events (event_id, user_id, organization_id, verb, object_id, object_type,
                                            skills, score, success, duration_seconds, occurred_at)
        SELECT c.statement_id, c.user_id, c.organization_id, c.event->>'verb', c.event->>'object_id',
               c.event->>'object_type', ARRAY(SELECT jsonb_array_elements_text(c.event->'skills')),
               (c.event->>'score')::real, (c.event->>'success')::boolean,
               (c.event->>'duration_seconds')::integer, c.event_occurred_at
        FROM claimed c
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM inserted;
    PERFORM set_config('app.maintenance', v_maintenance, true);
    RETURN v_count;
END $$;

REVOKE ALL ON FUNCTION app.xapi_claim_pending(uuid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.xapi_claim_pending(uuid[], text[]) TO {RUNTIME};
REVOKE ALL ON FUNCTION app.current_xapi_key() FROM PUBLIC;
REVOKE ALL ON FUNCTION app.begin_xapi_request(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION app.xapi_users(uuid[], text[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.current_xapi_key() TO {RUNTIME};
GRANT EXECUTE ON FUNCTION app.begin_xapi_request(text) TO {RUNTIME};
GRANT EXECUTE ON FUNCTION app.xapi_users(uuid[], text[], boolean) TO {RUNTIME};

ALTER TABLE xapi_credentials ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY xapi_credentials_maintenance ON xapi_credentials TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
ALTER TABLE xapi_statements ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY xapi_statements_maintenance ON xapi_statements TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
CREATE POLICY xapi_statements_select ON xapi_statements FOR SELECT TO {RUNTIME} USING ({X});
CREATE POLICY xapi_statements_insert ON xapi_statements FOR INSERT TO {RUNTIME} WITH CHECK ({X});
CREATE POLICY xapi_statements_update ON xapi_statements FOR UPDATE TO {RUNTIME} USING ({X}) WITH CHECK ({X});
GRANT SELECT, INSERT, UPDATE ON xapi_statements TO {RUNTIME};
ALTER TABLE xapi_attachments ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY xapi_attachments_maintenance ON xapi_attachments TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
CREATE POLICY xapi_attachments_select ON xapi_attachments FOR SELECT TO {RUNTIME} USING ({X});
CREATE POLICY xapi_attachments_insert ON xapi_attachments FOR INSERT TO {RUNTIME} WITH CHECK ({X});
GRANT SELECT, INSERT ON xapi_attachments TO {RUNTIME};

CREATE POLICY learning_events_delete ON learning_events FOR DELETE TO {RUNTIME}
    USING (organization_id = {O} AND (SELECT app.current_role()) = 'ingest'
           AND (SELECT app.current_xapi_key()) IS NOT NULL);
GRANT DELETE ON learning_events TO {RUNTIME};

ALTER TABLE learning_events DROP CONSTRAINT learning_events_verb_check;
ALTER TABLE learning_events ADD CONSTRAINT learning_events_verb_check CHECK (verb IN ({NEW_VERBS}));
"""

DOWNGRADE = f"""
SELECT app.begin_maintenance();
DELETE FROM learning_events WHERE verb NOT IN ({OLD_VERBS});
ALTER TABLE learning_events DROP CONSTRAINT learning_events_verb_check;
ALTER TABLE learning_events ADD CONSTRAINT learning_events_verb_check CHECK (verb IN ({OLD_VERBS}));
REVOKE DELETE ON learning_events FROM {RUNTIME};
DROP POLICY learning_events_delete ON learning_events;
DROP TABLE xapi_attachments;
DROP TABLE xapi_statements;
DROP TABLE xapi_credentials;
DROP FUNCTION app.xapi_claim_pending(uuid[], text[]);
DROP FUNCTION app.xapi_users(uuid[], text[], boolean);
DROP FUNCTION app.begin_xapi_request(text);
DROP FUNCTION app.current_xapi_key();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
