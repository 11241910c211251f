"""The foundation holds: the runtime role is confined, and a context never outlives its tx."""

from __future__ import annotations

import psycopg
import pytest

from ms8 import db
from ms8.errors import BadRequest, Forbidden
from ms8.repositories import analytics as repo
from tests.support.factories import Factory


def test_runtime_role_is_not_privileged(runtime_conn: psycopg.Connection) -> None:
    row = runtime_conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (False, False, False, False)
    owned = runtime_conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = current_user"
    ).fetchone()
    assert owned == (0,)


def test_request_context_round_trip(factory: Factory) -> None:
    org = factory.org(alice=["learner"], bob=["learner", "trainer"])
    factory.analytics(org.id, org.users["alice"], "learner", "mastery", {"mastery": 0.5})
    with db.runtime.transaction(db.as_user(org.users["alice"], None)) as (conn, caller):
        assert caller.organization_id == org.id
        assert caller.active_role == "learner"
        rows = repo.recent(conn, caller.user_id, "learner", None, 10)
        assert [r.analytics_type for r in rows] == ["mastery"]
    with pytest.raises(BadRequest) as err:
        with db.runtime.transaction(db.as_user(org.users["bob"], None)):
            pass
    assert err.value.code == "ROLE_REQUIRED"
    with pytest.raises(Forbidden) as err2:
        with db.runtime.transaction(db.as_user(org.users["alice"], "org_admin")):
            pass
    assert err2.value.code == "ROLE_NOT_HELD"
