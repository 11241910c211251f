"""analytics_pending: the learners whose snapshots and points a platform's batch left to the
refresh job.

A platform's batch (POST /v1/events with a service token, the bus, xAPI statements) stores its
events and adds them to the learner days in its own transaction, then notes each touched learner
here instead of recomputing them: one row per learner, however many batches arrive before the
refresh job (ms8.jobs.pending, every minute) takes them. The job reads what it needs from the row:

- `since`: the earliest transaction start (now()) of the batches noted, so the events to award
  points for are those with received_at >= since (learning_events.received_at defaults to the
  same now());
- `occurred_from`: the earliest occurred_at among them (NULL when a batch only removed events,
  e.g. a voided statement): it bounds the read to the partitions that can hold them;
- `version`: raised by every batch that notes the learner again; the job deletes the row only
  at the version it read, so a batch that arrives while the job works leaves the row for the
  next run;
- `rebuild_days`: the UTC days of the learner to build again from their events first (only
  those: the days are kept 7 years, the events 13 months, so a learner's whole history can
  never be rebuilt from events). Set for the days of a voided xAPI statement's event, and by
  app.xapi_claim_pending (redefined here) for the days of the statements it claims: xAPI
  statements stored before their actor was a user become the user's learning events when the
  directory writes the user, outside ingest's insert statement that keeps the days; until now
  those events reached neither the days nor, through them, the snapshots and rollups.

learning_events.sent_by_learner marks a learner's own events (ingest sets it; every other way
in, a platform's batch, the bus, xAPI, a claim, leaves it false): their points were awarded on
arrival, capped by the arrival hour, and the job, which counts by the hour events occurred in,
must not consider them again. A constant default: adding the column rewrites nothing.

RLS: the runtime role writes and reads only rows of its organization, and only as the ingest
role (a platform); the job works as the owner in maintenance. Gone with the user (cascade; the
primary key serves that look-up, so no other index costs the batches that note).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

RUNTIME = "ms8_app"
PLATFORM = "organization_id = (SELECT app.current_org_id()) AND (SELECT app.current_role()) = 'ingest'"

UPGRADE = f"""
CREATE TABLE analytics_pending (
    user_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    since timestamptz NOT NULL,
    occurred_from timestamptz,
    version bigint NOT NULL DEFAULT 1,
    rebuild_days date[] NOT NULL DEFAULT '{{}}',
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);
ALTER TABLE analytics_pending ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics_pending FORCE ROW LEVEL SECURITY;
CREATE POLICY analytics_pending_maintenance ON analytics_pending TO CURRENT_USER
    USING ((SELECT app.in_maintenance())) WITH CHECK ((SELECT app.in_maintenance()));
CREATE POLICY analytics_pending_select ON analytics_pending FOR SELECT TO {RUNTIME} USING ({PLATFORM});
CREATE POLICY analytics_pending_insert ON analytics_pending FOR INSERT TO {RUNTIME} WITH CHECK ({PLATFORM});
CREATE POLICY analytics_pending_update ON analytics_pending FOR UPDATE TO {RUNTIME}
    USING ({PLATFORM}) WITH CHECK ({PLATFORM});
GRANT SELECT, INSERT, UPDATE ON analytics_pending TO {RUNTIME};

"""


# app.xapi_claim_pending as 0010 defined it, its inserted events now noted for the refresh job
# (with their days to be built again).
CLAIMED = """
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM inserted;"""
CLAIMED_AND_NOTED = """
        RETURNING user_id, organization_id, occurred_at
    ), noted AS (
        INSERT INTO public.analytics_pending AS p (user_id, organization_id, since, occurred_from, rebuild_days)
        SELECT i.user_id, i.organization_id, now(), min(i.occurred_at),
               array_agg(DISTINCT (i.occurred_at AT TIME ZONE 'UTC')::date)
        FROM inserted i GROUP BY 1, 2
        ON CONFLICT (user_id) DO UPDATE SET
            since = least(p.since, EXCLUDED.since),
            occurred_from = least(p.occurred_from, EXCLUDED.occurred_from),
            version = p.version + 1,
            rebuild_days = ARRAY(SELECT DISTINCT d FROM unnest(p.rebuild_days || EXCLUDED.rebuild_days) AS d)
    )
    SELECT count(*) INTO v_count FROM inserted;"""


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute("ALTER TABLE learning_events ADD COLUMN sent_by_learner boolean NOT NULL DEFAULT false")
    previous = _claim_function()
    assert CLAIMED in previous
    op.execute(previous.replace(CLAIMED, CLAIMED_AND_NOTED))


def downgrade() -> None:
    op.execute("ALTER TABLE learning_events DROP COLUMN sent_by_learner")
    op.execute(_claim_function())
    op.execute("DROP TABLE analytics_pending")


def _claim_function() -> str:
    """CREATE OR REPLACE of app.xapi_claim_pending as 0010 defined it (taken from there, not copied)."""
    previous = _load("0010_xapi").UPGRADE
    start = previous.index("CREATE FUNCTION app.xapi_claim_pending")
    end = previous.index("END $$;", start) + len("END $$;")
    return previous[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
