"""app.begin_request (migration 0016): the user lookup under the maintenance flag and the context
set in the same statement; the flag never outlives the lookup."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.support.factories import Factory

SETTINGS = (
    "SELECT current_setting('app.maintenance', true), current_setting('app.current_user_id', true), "
    "current_setting('app.current_org_id', true), current_setting('app.current_role', true)"
)


def test_an_accepted_context_leaves_maintenance_off(factory: Factory, runtime_conn: psycopg.Connection) -> None:
    org = factory.org(tom=["trainer", "learner"])
    tom = org.users["tom"]
    with runtime_conn.transaction():
        row = runtime_conn.execute("SELECT * FROM app.begin_request(%s, 'trainer')", (tom,)).fetchone()
        assert row == (tom, org.id, ["trainer", "learner"], "trainer", "UTC")
        assert runtime_conn.execute(SETTINGS).fetchone() == ("", str(tom), str(org.id), "trainer")


@pytest.mark.parametrize(
    ("who", "role", "state"),
    [("stranger", None, "MS401"), ("tom", None, "MS400"), ("tom", "org_admin", "MS403"), ("ann", "trainer", "MS403")],
)
def test_a_refused_context_leaves_nothing_behind(
    factory: Factory, runtime_conn: psycopg.Connection, who: str, role: str | None, state: str
) -> None:
    org = factory.org(tom=["trainer", "learner"], ann=["learner"])
    user = org.users.get(who, uuid.uuid4())
    with runtime_conn.transaction():
        # A savepoint keeps the transaction usable after the refusal, as a caller catching it would.
        with pytest.raises(psycopg.Error) as refused, runtime_conn.transaction():
            runtime_conn.execute("SELECT * FROM app.begin_request(%s, %s)", (user, role))
        assert refused.value.sqlstate == state
        left = runtime_conn.execute(SETTINGS).fetchone()
        assert left is not None and all(v in (None, "") for v in left), left
        assert runtime_conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
