"""The runtime role's limits do not depend on its own role defaults: what ms8_app can set on itself
(ALTER ROLE ms8_app SET ...) succeeds, and changes nothing for the service's request transactions,
which fix statement timeout, idle-in-transaction timeout, row security (migration 0009) and
read/write mode and isolation (the BEGIN of ms8.db) themselves."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from ms8 import db
from ms8.domain import bounds
from tests.support.factories import Factory, Org

LIMITS = ("statement_timeout", "idle_in_transaction_session_timeout", "row_security", "transaction_read_only",
          "transaction_isolation")


@pytest.fixture
def org(factory: Factory) -> Org:
    return factory.org("Limits", ada=["learner"])


@pytest.fixture
def weakened(runtime_url: str) -> Iterator[None]:
    """The runtime role, as an attacker holding its password would, loosens its own defaults."""
    with psycopg.connect(runtime_url, autocommit=True) as conn:
        dbname = conn.info.dbname
        before = _role_defaults(conn)
        # IN DATABASE: the most specific defaults, those that win over any other.
        for setting in ("statement_timeout = 0", "idle_in_transaction_session_timeout = 0",
                        "default_transaction_read_only = on", "default_transaction_isolation = 'serializable'",
                        "row_security = off"):
            conn.execute(sql.SQL("ALTER ROLE ms8_app IN DATABASE {} SET " + setting).format(sql.Identifier(dbname)))
    db.runtime.reset()  # the next request opens a session that gets the new defaults
    try:
        yield
    finally:
        with psycopg.connect(runtime_url, autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute(sql.SQL("ALTER ROLE ms8_app IN DATABASE {} RESET ALL").format(sql.Identifier(dbname)))
            for item in before:  # the migration's own defaults (0002), as they were
                name, value = item.split("=", 1)
                conn.execute(sql.SQL("ALTER ROLE ms8_app IN DATABASE {} SET {} = {}").format(
                    sql.Identifier(dbname), sql.Identifier(name), sql.Literal(value)))
            assert _role_defaults(conn) == before
        db.runtime.reset()


def _role_defaults(conn: psycopg.Connection) -> list[str]:
    row = conn.execute(
        "SELECT coalesce(setconfig, '{}') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
        "JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = 'ms8_app' AND d.datname = current_database()"
    ).fetchone()
    return sorted(row[0]) if row else []


def _settings(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY (%s)", (list(LIMITS),)).fetchall()
    return dict(rows)


def test_a_fresh_session_of_the_weakened_role_does_carry_the_new_defaults(weakened: None, runtime_url: str) -> None:
    """The contrast that shows the next test can fail: the defaults do reach a new session."""
    with psycopg.connect(runtime_url) as conn:
        got = _settings(conn)
    assert got["statement_timeout"] == "0" and got["transaction_read_only"] == "on"
    assert got["row_security"] == "off" and got["transaction_isolation"] == "serializable"


def test_request_transactions_keep_their_limits_whatever_the_role_defaults(weakened: None, org: Org) -> None:
    for begin in (db.as_user(org.users["ada"], None),):
        with db.runtime.transaction(begin) as (conn, _):
            got = _settings(conn)
    assert got == {"statement_timeout": "15000", "idle_in_transaction_session_timeout": "30000",
                   "row_security": "on", "transaction_read_only": "off", "transaction_isolation": "read committed"}


def test_a_request_still_writes_and_rls_still_filters(weakened: None, org: Org, factory: Factory) -> None:
    other = factory.org("Limits elsewhere", bob=["learner"])
    factory.analytics(other.id, other.users["bob"], "learner", "mastery", {"mastery": 0.9})
    with db.runtime.transaction(db.as_user(org.users["ada"], None)) as (conn, _):
        conn.execute(
            "INSERT INTO analytics (user_id, organization_id, role, analytics_type, data) "
            "VALUES (%s, %s, 'learner', 'mastery', '{\"mastery\": 0.5}')", (org.users["ada"], org.id))
        seen = conn.execute("SELECT user_id FROM analytics").fetchall()
    assert seen == [(org.users["ada"],)]


def test_the_runtime_role_cannot_create_temporary_objects(runtime_conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        runtime_conn.execute("CREATE TEMP TABLE analytics (x int)")


def test_the_views_ranges_are_the_documented_ones(factory: Factory) -> None:
    rows = factory.sql("SELECT analytics_type, valid_low, valid_high, release_low, release_high "
                       "FROM app.headline_ranges ORDER BY 1")
    expected = sorted(
        (t, next(iter(fields.values())).low, next(iter(fields.values())).high, *bounds.HEADLINE_RANGE[t])
        for t, fields in bounds.FIELDS.items()
    )
    assert [tuple(r) for r in rows] == expected
