"""The directory's EventBridge consumer as a registered platform client.

DirectoryEventsFunction applies the platform's directory events as the service client
`platform-bus` (env DIRECTORY_CLIENT_ID): directory scope, every organization (organization_id
NULL). Registering it here means a deployed stack provisions its users from the bus without anyone
writing SQL. The learning-events consumer is the same client with the ingest scope (0005): the
scope is added to the row if it exists (unless an operator bound it to one organization), the row
created if not. The downgrade takes the scope back, and the row when it holds nothing else and is
ours. A deployment that sets another DIRECTORY_CLIENT_ID registers that id the same way.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CLIENT_ID = "platform-bus"
DESCRIPTION = "EventBridge consumer of the platform directory events (migration 0006)"

# service_clients has RLS forced on its owner too: these run in a maintenance transaction.
UPGRADE = f"""
SELECT app.begin_maintenance();
INSERT INTO service_clients AS c (client_id, organization_id, scopes, description)
VALUES ('{CLIENT_ID}', NULL, ARRAY['directory'], '{DESCRIPTION}')
ON CONFLICT (client_id) DO UPDATE SET scopes = c.scopes || 'directory'::text
WHERE c.organization_id IS NULL AND NOT 'directory' = ANY (c.scopes);
"""

DOWNGRADE = f"""
SELECT app.begin_maintenance();
DELETE FROM service_clients
WHERE client_id = '{CLIENT_ID}' AND scopes = ARRAY['directory'] AND description = '{DESCRIPTION}';
UPDATE service_clients SET scopes = array_remove(scopes, 'directory')
WHERE client_id = '{CLIENT_ID}' AND 'directory' = ANY (scopes) AND cardinality(scopes) > 1;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
