"""Two users' requests interleaved on ONE server connection of PgBouncer in transaction mode
(pool size 1, the stand-in for RDS Proxy): neither sees the other's rows or settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest

from local import pooler
from ms8 import config, db
from ms8.repositories import analytics, users
from tests.support.factories import Factory

SETTINGS = "SELECT pg_backend_pid(), current_setting('app.current_user_id', true), " \
           "current_setting('app.current_org_id', true), current_setting('app.current_role', true)"


@pytest.fixture
def pooled(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with pooler.pgbouncer(database, pool_size=1) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        config.settings.cache_clear()
        yield url
    config.settings.cache_clear()


def _own_rows(database: db.Database, user: UUID) -> tuple[UUID | None, list[UUID]]:
    caller, rows = db.read_as_user(database, user, None, analytics.READ_RECENT, (None, 100))
    return caller.user_id, sorted({a.user_id for a in analytics.items(rows)})


def test_two_users_interleaved_on_one_server_connection(factory: Factory, pooled: str) -> None:
    a_org = factory.org(ann=["learner"])
    b_org = factory.org(ben=["learner"])
    ann, ben = a_org.users["ann"], b_org.users["ben"]
    factory.analytics(a_org.id, ann, "learner", "mastery", {"mastery": 0.1})
    factory.analytics(b_org.id, ben, "learner", "mastery", {"mastery": 0.9})
    first, second = db.Database("runtime"), db.Database("runtime")  # two clients (two Lambdas)
    probe = psycopg.connect(pooled, autocommit=True, prepare_threshold=None)
    try:
        backends = set()
        for round_ in range(3):
            for database, user, org, other in ((first, ann, a_org.id, ben), (second, ben, b_org.id, ann)):
                # A read (one statement) ...
                assert _own_rows(database, user) == (user, [user])
                # ... and a write transaction (begin, context, statement, commit).
                with database.transaction(db.as_user(user, None)) as (conn, caller):
                    assert caller.organization_id == org
                    backends.add(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
                    conn.execute(
                        "INSERT INTO analytics (user_id, organization_id, role, analytics_type, data) "
                        "VALUES (%s, %s, 'learner', 'engagement', %s) ON CONFLICT (user_id, role, analytics_type) "
                        "DO UPDATE SET data = EXCLUDED.data",
                        (user, org, f'{{"round": {round_}}}'),
                    )
                    hidden = conn.execute("SELECT count(*) FROM analytics WHERE user_id = %s", (other,))
                    assert hidden.fetchone() == (0,)
                    assert users.get(conn, other) is None
                # What the next client of the server connection finds: no context at all.
                pid, *left = probe.execute(SETTINGS).fetchone()  # type: ignore[misc]
                backends.add(pid)
                assert all(v in (None, "") for v in left), left
                assert probe.execute("SELECT count(*) FROM analytics").fetchone() == (0,)
        assert len(backends) == 1  # every one of those transactions ran on the same server connection
        assert factory.sql("SELECT user_id, data->>'round' FROM analytics WHERE analytics_type = 'engagement' "
                           "AND user_id = ANY (%s) ORDER BY user_id", ([ann, ben],)) == sorted(
            [(ann, "2"), (ben, "2")])
    finally:
        probe.close()
        first.reset()
        second.reset()


def test_an_open_transaction_holds_the_server_connection_until_it_ends(factory: Factory, pooled: str) -> None:
    """With one server connection, a second client waits for the first one's transaction rather than
    sharing it: the second never runs inside the first's context."""
    org = factory.org(ann=["learner"], ben=["learner"])
    ann, ben = org.users["ann"], org.users["ben"]
    first, second = db.Database("runtime"), db.Database("runtime")
    seen: list[tuple[UUID | None, list[UUID]]] = []
    try:
        with first.transaction(db.as_user(ann, None)) as (conn, _):
            waiter = threading.Thread(target=lambda: seen.append(_own_rows(second, ben)))
            waiter.start()
            time.sleep(0.5)
            assert seen == []  # still waiting for the server connection
            assert conn.execute("SELECT app.current_user_id()").fetchone() == (ann,)
        waiter.join(10)
        assert seen == [(ben, [])]
    finally:
        first.reset()
        second.reset()
