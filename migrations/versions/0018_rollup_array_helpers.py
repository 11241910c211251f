"""Two helpers for the population rollups' distributions (ms8.repositories.rollups):

1. app.array_cat_agg(anycompatiblearray): the concatenation of the arrays of a group (NULLs are
   skipped; NULL when every input is). The rollup collects each signature's values in one
   hashed pass and gives a population the values of its signatures by concatenating a few
   arrays, instead of one row per learner and population through a sort.
2. app.array_sorted(anycompatiblearray): the array in ascending order, as ORDER BY sorts it.
   PostgreSQL 18 has array_sort (one C call per array); before 18 the same result comes from
   unnest ... ORDER BY. The body is chosen when the migration runs, by the server's version.

Both are the owner's (the rollup job runs as the owner); PUBLIC may not execute them.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-06
"""

from alembic import op
from sqlalchemy import text

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None

# PostgreSQL 18 and later: the built-in sort, called inline.
SORTED_BUILTIN = "SELECT pg_catalog.array_sort($1)"
# Before 18: the same order from a sort of the elements (NULLs last, as ORDER BY and array_sort).
SORTED_PORTABLE = "SELECT ARRAY(SELECT x FROM pg_catalog.unnest($1) AS x ORDER BY x)"


def sorted_body(server_version_num: int) -> str:
    return SORTED_BUILTIN if server_version_num >= 180000 else SORTED_PORTABLE


def upgrade() -> None:
    version = int(op.get_bind().execute(text("SHOW server_version_num")).scalar_one())
    op.execute("""
CREATE AGGREGATE app.array_cat_agg(anycompatiblearray) (
    SFUNC = pg_catalog.array_cat,
    STYPE = anycompatiblearray
);
REVOKE ALL ON FUNCTION app.array_cat_agg(anycompatiblearray) FROM PUBLIC;
COMMENT ON AGGREGATE app.array_cat_agg(anycompatiblearray) IS
    'The arrays of a group concatenated (NULLs skipped); used by the population rollups.';
""")
    op.execute(f"""
CREATE FUNCTION app.array_sorted(anycompatiblearray) RETURNS anycompatiblearray
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ {sorted_body(version)} $$;
REVOKE ALL ON FUNCTION app.array_sorted(anycompatiblearray) FROM PUBLIC;
COMMENT ON FUNCTION app.array_sorted(anycompatiblearray) IS
    'The array in ascending order (as ORDER BY); used by the population rollups.';
""")


def downgrade() -> None:
    op.execute("DROP FUNCTION app.array_sorted(anycompatiblearray)")
    op.execute("DROP AGGREGATE app.array_cat_agg(anycompatiblearray)")
