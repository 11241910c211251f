"""The points cap counts per clock hour, and whose clock is written with each award.

Until now no user earned more than 200 points in any rolling hour of award time, so history a
platform service sent in one go (a back-fill, ninety days at once) was clamped to 200 points and
the learner's next own events earned nothing for an hour. From now on each award counts against a
"cap hour", the UTC clock hour it belongs to: the hour the event occurred in when a platform
service sent it, the hour it arrived in when the learner sent it. `cap_hour` keeps that hour per
ledger row so the next batch can sum a user's points of an hour through an index. Rows written
before count where the old rule counted them: the hour they were awarded in (also the default for
a row written without one: the strict reading).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE points_ledger ADD COLUMN cap_hour timestamptz")
    op.execute("UPDATE points_ledger SET cap_hour = date_trunc('hour', awarded_at, 'UTC')")
    op.execute("ALTER TABLE points_ledger ALTER COLUMN cap_hour SET DEFAULT date_trunc('hour', now(), 'UTC'), "
               "ALTER COLUMN cap_hour SET NOT NULL")
    op.execute("CREATE INDEX points_ledger_user_cap_hour_idx ON points_ledger (user_id, cap_hour) INCLUDE (points)")


def downgrade() -> None:
    op.execute("DROP INDEX points_ledger_user_cap_hour_idx")
    op.execute("ALTER TABLE points_ledger DROP COLUMN cap_hour")
