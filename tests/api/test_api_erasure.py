"""DELETE /v1/users/{userId}: an org admin erases a user of the organization, rows and files."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ms8 import storage
from tests.support.api import call
from tests.support.factories import Factory, Org
from tests.support.s3 import BUCKET


def _report(factory: Factory, s3: Any, org: Org, user: str) -> str:
    rid = uuid.uuid4()
    key = f"reports/{org.id}/{org.users[user]}/{rid}.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"a,b\n")
    factory.sql(
        "INSERT INTO reports (id, user_id, organization_id, role, format, status, s3_key, size_bytes) "
        "VALUES (%s, %s, %s, 'learner', 'csv', 'ready', %s, 4)", (rid, org.users[user], org.id, key))
    return key


def test_org_admin_erases_rows_and_files(factory: Factory, s3: Any) -> None:
    org = factory.org("Acme", alice=["learner"], ada=["org_admin"])
    other = factory.org("Globex", xavier=["learner"])
    factory.analytics(org.id, org.users["alice"], "learner", "mastery", {"mastery": 0.5})
    key = _report(factory, s3, org, "alice")
    kept = _report(factory, s3, other, "xavier")

    r = call("DELETE", f"/v1/users/{org.users['alice']}", sub=org.users["ada"])
    assert r.status == 200, r.body
    assert r.body == {"userId": str(org.users["alice"]), "reportFilesDeleted": 1}
    for table in ("users", "analytics", "reports"):
        column = "id" if table == "users" else "user_id"
        assert factory.sql(f"SELECT count(*) FROM {table} WHERE {column} = %s", (org.users["alice"],)) == [(0,)]
    assert factory.sql("SELECT count(*) FROM user_tombstones WHERE user_id = %s", (org.users["alice"],)) == [(1,)]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert key not in listed and kept in listed


def test_erasure_refusals(factory: Factory, s3: Any) -> None:
    org = factory.org("Acme", alice=["learner"], bob=["learner"], ada=["org_admin"], tina=["trainer"])
    other = factory.org("Globex", xavier=["learner"], yan=["org_admin"])
    factory.assign(org.id, org.users["tina"], org.users["alice"])
    r = call("DELETE", f"/v1/users/{org.users['bob']}", sub=org.users["alice"])
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")
    r = call("DELETE", f"/v1/users/{org.users['alice']}", sub=org.users["tina"])
    assert r.status == 403
    r = call("DELETE", f"/v1/users/{other.users['xavier']}", sub=org.users["ada"])
    assert (r.status, r.error_code) == (404, "NOT_FOUND")
    r = call("DELETE", f"/v1/users/{uuid.uuid4()}", sub=org.users["ada"])
    assert (r.status, r.error_code) == (404, "NOT_FOUND")
    r = call("DELETE", f"/v1/users/{org.users['ada']}", sub=org.users["ada"])
    assert (r.status, r.error_code) == (409, "LAST_ORG_ADMIN")
    r = call("DELETE", "/v1/users/1234", sub=org.users["ada"])
    assert r.status == 422
    assert factory.sql("SELECT count(*) FROM users WHERE id = ANY(%s)",
                       ([*org.users.values(), *other.users.values()],)) == [(6,)]


def test_storage_failure_erases_nothing(factory: Factory, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    org = factory.org("Acme", alice=["learner"], ada=["org_admin"])
    key = _report(factory, s3, org, "alice")

    def refuse(*_: Any, **__: Any) -> Any:
        raise ConnectionError("S3 is down")

    monkeypatch.setattr(storage.s3_client(), "delete_objects", refuse)
    r = call("DELETE", f"/v1/users/{org.users['alice']}", sub=org.users["ada"])
    assert (r.status, r.error_code) == (503, "STORAGE_UNAVAILABLE")
    assert factory.sql("SELECT count(*) FROM users WHERE id = %s", (org.users["alice"],)) == [(1,)]
    assert factory.sql("SELECT count(*) FROM reports WHERE s3_key = %s", (key,)) == [(1,)]
