"""Migration 0014 on a scratch database holding rollups: population_rollups becomes yearly
partitions with every row, key, policy, grant, index and comment it had, and back again."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from local import localdb

THIS_YEAR = datetime.now(UTC).year
# Inside the window the migration makes anyway, and two years outside it on either side.
YEARS = [THIS_YEAR - 12, THIS_YEAR - 1, THIS_YEAR, THIS_YEAR + 5]

DESCRIBE = {
    "policies": "SELECT policyname, cmd, roles::text, qual, with_check FROM pg_policies "
                "WHERE schemaname = 'public' AND tablename = 'population_rollups' ORDER BY 1",
    "grants": "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
              "WHERE table_schema = 'public' AND table_name = 'population_rollups' ORDER BY 1, 2",
    "constraints": "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE conrelid = 'public.population_rollups'::regclass ORDER BY 1",
    "indexes": "SELECT indexname, replace(indexdef, ' ON ONLY ', ' ON ') FROM pg_indexes "
               "WHERE schemaname = 'public' AND tablename = 'population_rollups' ORDER BY 1",
    "comments": "SELECT obj_description('public.population_rollups'::regclass, 'pg_class'), "
                "col_description('public.population_rollups'::regclass, a.attnum) FROM pg_attribute a "
                "WHERE a.attrelid = 'public.population_rollups'::regclass AND a.attname = 'capped'",
    "columns": "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
               "WHERE table_schema = 'public' AND table_name = 'population_rollups' ORDER BY ordinal_position",
    "rls": "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'public.population_rollups'::regclass",
}
ROWS = ("SELECT organization_id, trainer_id, granularity, period_start, period_end, learners, active_learners, "
        "completions, distribution, capped, version, computed_at FROM population_rollups ORDER BY 1, 2, 3, 4")


def _query(url: str, statement: str, params: Any = None, *, maintenance: bool = False) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        if maintenance:
            conn.execute("SELECT app.begin_maintenance()")
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def _describe(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: _query(url, statement) for name, statement in DESCRIBE.items()}


def _kind(url: str) -> str:
    return str(_query(url, "SELECT relkind FROM pg_class WHERE oid = 'public.population_rollups'::regclass")[0][0])


@pytest.fixture
def scratch(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database migrated up to the revision before 0014; dropped afterwards."""
    name = f"ms8_parts0014_{os.getpid()}"
    monkeypatch.setenv("MIGRATIONS_DATABASE_URL", os.environ.get("MIGRATIONS_DATABASE_URL", ""))
    localdb.drop_database(name)
    localdb.bootstrap(name)
    try:
        localdb.migrate(name, "0012")
        yield localdb.owner_url(name)
    finally:
        localdb.drop_database(name)


def _seed(url: str) -> None:
    """An organization with a trainer: organization and cohort rows across the YEARS."""
    org, trainer = uuid.uuid4(), uuid.uuid4()
    _query(url, "INSERT INTO organizations (id, name) VALUES (%s, 'Moving')", (org,), maintenance=True)
    _query(url, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, 't', '{trainer}')",
           (trainer, org, f"{trainer.hex}@example.test"), maintenance=True)
    for i, year in enumerate(YEARS):
        for cohort in (None, trainer):
            _query(url, """
                INSERT INTO population_rollups (organization_id, trainer_id, granularity, period_start, period_end,
                    learners, active_learners, completions, assessments, scored, score_micros, duration_seconds,
                    distribution, version, capped)
                VALUES (%s, %s, 'monthly', %s, %s, %s, 1, %s, 0, 0, 0, 60, %s, 2, %s)""",
                   (org, cohort, date(year, 3, 1), date(year, 4, 1), 3 + i, 10 * i,
                    Jsonb({"completions": {"p25": i}}), Jsonb({"learners": 3 + i})), maintenance=True)


def test_0014_moves_every_row_into_yearly_partitions_and_back(scratch: str) -> None:
    _seed(scratch)
    rows = _query(scratch, ROWS, maintenance=True)
    assert len(rows) == 2 * len(YEARS)
    plain = _describe(scratch)
    assert _kind(scratch) == "r"
    assert plain["policies"] and plain["grants"] and plain["indexes"] and plain["comments"][0][0]

    localdb.migrate(_name(scratch), "0014")

    assert _kind(scratch) == "p"
    assert _query(scratch, "SELECT pg_get_partkeydef('public.population_rollups'::regclass)") == [
        ("RANGE (period_start)",)]
    assert _describe(scratch) == plain
    assert _query(scratch, ROWS, maintenance=True) == rows
    parts = _query(scratch, """
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.relrowsecurity, c.relforcerowsecurity
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.population_rollups'::regclass ORDER BY 1""")
    years = set(range(THIS_YEAR - 7, THIS_YEAR + 3)) | set(YEARS)
    assert [p[0] for p in parts] == [f"population_rollups_y{y}" for y in sorted(years)]
    assert all(p[1] == f"FOR VALUES FROM ('{int(p[0][-4:])}-01-01') TO ('{int(p[0][-4:]) + 1}-01-01')" for p in parts)
    assert {(p[2], p[3]) for p in parts} == {(True, True)}
    # Each row sits in its year's partition; the key still treats "no cohort" as one value.
    for year in YEARS:
        assert _query(scratch, "SELECT count(*) FROM population_rollups WHERE tableoid = %s::regclass",
                      (f"population_rollups_y{year}",), maintenance=True) == [(2,)]
    with pytest.raises(errors.UniqueViolation):
        _query(scratch, "INSERT INTO population_rollups SELECT * FROM population_rollups "
                        "WHERE trainer_id IS NULL LIMIT 1", maintenance=True)
    # The runtime role reads the partitions only through the table.
    with psycopg.connect(localdb.runtime_url(_name(scratch))) as rt:
        with pytest.raises(errors.InsufficientPrivilege):
            rt.execute(f"SELECT 1 FROM population_rollups_y{THIS_YEAR}")

    _downgrade(scratch)

    assert _kind(scratch) == "r"
    assert _describe(scratch) == plain
    assert _query(scratch, ROWS, maintenance=True) == rows
    assert _query(scratch, "SELECT count(*) FROM pg_class WHERE relname LIKE 'population_rollups_y%'") == [(0,)]


def _name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _downgrade(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(localdb.ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(localdb.ROOT / "migrations"))
    os.environ["MIGRATIONS_DATABASE_URL"] = url
    command.downgrade(cfg, "0012")
