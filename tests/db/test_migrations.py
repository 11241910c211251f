"""The migrations on a scratch database: upgrade, downgrade to base (nothing left behind but
alembic's own table), and upgrade again to the very same schema."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from local import localdb, paths

FINGERPRINT = {
    "relations": "SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity "
                 "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                 "WHERE n.nspname IN ('public', 'app') ORDER BY 1, 2",
    "policies": "SELECT tablename, policyname, cmd, roles::text, qual, with_check FROM pg_policies "
                "ORDER BY 1, 2",
    "functions": "SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig::text FROM pg_proc p "
                 "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ('public', 'app') ORDER BY 1",
    "grants": "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
              "WHERE grantee = 'ms8_app' ORDER BY 1, 2",
    "triggers": "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
}

# Explicit grants to the runtime role on schema public (PUBLIC's default USAGE aside).
RUNTIME_ON_PUBLIC = (
    "SELECT count(*) FROM pg_namespace n, aclexplode(n.nspacl) a "
    "WHERE n.nspname = 'public' AND a.grantee = 'ms8_app'::regrole"
)


def _alembic() -> Config:
    cfg = Config(str(paths.ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(paths.ROOT / "migrations"))
    return cfg


def _query(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(statement)]  # type: ignore[arg-type]


def _fingerprint(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: _query(url, statement) for name, statement in FINGERPRINT.items()}


@pytest.fixture
def scratch(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, empty database owned by the owner role; dropped afterwards."""
    name = f"ms8_migrations_{os.getpid()}"
    # localdb.migrate points MIGRATIONS_DATABASE_URL at the scratch database: restore it after.
    monkeypatch.setenv("MIGRATIONS_DATABASE_URL", os.environ.get("MIGRATIONS_DATABASE_URL", ""))
    localdb.drop_database(name)
    localdb.bootstrap(name)
    try:
        yield name
    finally:
        localdb.drop_database(name)


def test_upgrade_downgrade_to_base_and_upgrade_again(scratch: str) -> None:
    url = localdb.owner_url(scratch)
    cfg = _alembic()
    head = ScriptDirectory.from_config(cfg).get_current_head()

    localdb.migrate(scratch)
    assert _query(url, "SELECT version_num FROM alembic_version") == [(head,)]
    first = _fingerprint(url)
    assert first["policies"] and first["grants"] and first["functions"]
    assert _query(url, RUNTIME_ON_PUBLIC) == [(1,)]

    command.downgrade(cfg, "base")
    left = _query(
        url,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') ORDER BY 1",
    )
    assert left == [("alembic_version",)]
    assert _query(url, "SELECT count(*) FROM alembic_version") == [(0,)]
    assert _query(url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'") == [(0,)]
    assert _query(url, "SELECT count(*) FROM pg_policies") == [(0,)]
    assert _query(url, FINGERPRINT["grants"]) == []
    assert _query(url, RUNTIME_ON_PUBLIC) == [(0,)]

    command.upgrade(cfg, "head")
    assert _query(url, "SELECT version_num FROM alembic_version") == [(head,)]
    assert _fingerprint(url) == first


def test_each_revision_downgrades_and_upgrades_one_step(scratch: str) -> None:
    url = localdb.owner_url(scratch)
    cfg = _alembic()
    revisions = [s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()]  # head first
    localdb.migrate(scratch)
    prints = {revisions[0]: _fingerprint(url)}
    for previous in revisions[1:]:
        command.downgrade(cfg, "-1")
        assert _query(url, "SELECT version_num FROM alembic_version") == [(previous,)]
        prints[previous] = _fingerprint(url)
    for revision in reversed(revisions[:-1]):
        command.upgrade(cfg, "+1")
        assert _fingerprint(url) == prints[revision], revision
