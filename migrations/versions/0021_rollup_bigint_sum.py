"""app.sum_bigint(bigint): the sum of a group's bigints as a bigint, for the population rollups
(ms8.repositories.rollups).

The built-in sum(bigint) accumulates in a 128-bit (or numeric) state kept in memory of its own
and answers numeric; the rollups cast every such sum back to bigint, which fails when it does not
fit. This aggregate adds with int8pl, a plain bigint state: the same result whenever no partial
sum leaves the bigint range (always, for the rollups' non-negative counts and sums), an error
where one does (int8pl raises on overflow, never wraps; sum() may still fit when later rows bring
it back), and cheaper per row. The hashed per-signature sums of a backfill also keep less in memory (the planner budgets
about 8 kB per group for every aggregate with an in-memory state, and caps the groups it holds
before spilling to disk by that budget; a bigint state counts 8 bytes).

The owner's (the rollup job runs as the owner); PUBLIC may not execute it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE AGGREGATE app.sum_bigint(bigint) (
    SFUNC = pg_catalog.int8pl,
    STYPE = bigint,
    COMBINEFUNC = pg_catalog.int8pl,
    PARALLEL = SAFE
);
REVOKE ALL ON FUNCTION app.sum_bigint(bigint) FROM PUBLIC;
COMMENT ON AGGREGATE app.sum_bigint(bigint) IS
    'The sum of a group''s bigints as a bigint (NULLs skipped; NULL without any; an error past the bigint range); used by the population rollups.';
""")


def downgrade() -> None:
    op.execute("DROP AGGREGATE app.sum_bigint(bigint)")
