"""Statistics on the rollup job's check of a learner day, so that its plans fit the data.

The rollup job leaves out a learner day whose figures its events cannot explain (five
comparisons between the day's columns). The planner has no statistics for a comparison of two
columns and takes each as true for a third of the rows: the five together for 1 row in 250, so
it planned the job's joins and aggregates for a few thousand learner days instead of hundreds of
thousands (merge joins, sorts spilling to disk). The job now writes the check as one expression,
coalesce(<the five>, false), and these statistics on that very expression tell the planner how
many days pass it (nearly all). The expression must stay identical to the one in
ms8/repositories/rollups.py (a test holds the estimate close to the count).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

VALID_DAY = ("coalesce((completions <= events AND assessments <= events AND scored <= assessments "
             "AND score_micros <= scored::bigint * 1000000 AND duration_seconds <= events::bigint * 86400), false)")


def upgrade() -> None:
    op.execute(f"CREATE STATISTICS learner_daily_activity_valid_day_stats ON ({VALID_DAY}) FROM learner_daily_activity")
    op.execute("ANALYZE learner_daily_activity")


def downgrade() -> None:
    op.execute("DROP STATISTICS learner_daily_activity_valid_day_stats")
