"""Unique keys that answered across tenants: learning events per user, emails per organization.

Both were found by tests/http/test_isolation_http.py: a caller learned that a row it may not see exists,
from the answer to a write that collided with it.

1. learning_events had the primary key (event_id, occurred_at) for the whole service. Ingest
   inserts with ON CONFLICT ... DO NOTHING and answers how many events were new and how many were
   duplicates; a caller that sent an event carrying the id and time of another user's event (of
   another organization, or of their own organization, hidden by RLS) got `inserted: 0,
   duplicates: 1` instead of `inserted: 1`: the counts revealed that the other event exists, and
   the caller's own event was silently dropped. The key becomes (user_id, event_id, occurred_at).
   An event (an xAPI statement) has one actor, so a real replay names the same user and is still
   skipped; only ids that collide between different users now stay apart. occurred_at stays in
   the key: the table is partitioned on it.

2. users_email_key made an email unique across the service (case-insensitively). A directory
   client registered for one organization that upserted a user with an email held in another
   organization got 409 EMAIL_TAKEN, where any other email is created: an oracle for the emails
   of every other organization. An email is now unique within its organization
   (organization_id, lower(email)); identity comes from the token's `sub`, never from the email,
   and the same person may be a user of two organizations.

Rebuilding the keys takes ACCESS EXCLUSIVE locks on learning_events (and its partitions) and users
while the unique indexes are built (seconds per million rows): run it in a quiet window. The
downgrade restores the service-wide keys; it fails (and changes nothing) if rows now collide on
them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE learning_events DROP CONSTRAINT learning_events_pkey")
    op.execute("ALTER TABLE learning_events ADD CONSTRAINT learning_events_pkey "
               "PRIMARY KEY (user_id, event_id, occurred_at)")
    op.execute("DROP INDEX users_email_key")
    op.execute("CREATE UNIQUE INDEX users_email_key ON users (organization_id, lower(email))")


def downgrade() -> None:
    op.execute("DROP INDEX users_email_key")
    op.execute("CREATE UNIQUE INDEX users_email_key ON users (lower(email))")
    op.execute("ALTER TABLE learning_events DROP CONSTRAINT learning_events_pkey")
    op.execute("ALTER TABLE learning_events ADD CONSTRAINT learning_events_pkey PRIMARY KEY (event_id, occurred_at)")
