"""The expiry job: report rows past retention (and a grace for S3's lifecycle) go, with their
link audit rows; younger ones stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ms8.jobs.expire_reports import GRACE_DAYS
from tests.support.factories import Factory
from tests.support.jobs import invoke, load_handler, sample_event


def _report(factory: Factory, org_id: uuid.UUID, user_id: uuid.UUID, age_days: float) -> uuid.UUID:
    rid = uuid.uuid4()
    factory.sql(
        "INSERT INTO reports (id, user_id, organization_id, role, format, status, s3_key, size_bytes, created_at) "
        "VALUES (%s, %s, %s, 'learner', 'csv', 'ready', %s, 10, now() - make_interval(secs => %s))",
        (rid, user_id, org_id, f"reports/{org_id}/{user_id}/{rid}.csv", age_days * 86400),
    )
    factory.sql(
        "INSERT INTO report_links (report_id, organization_id, user_id, expires_at) VALUES (%s, %s, %s, now())",
        (rid, org_id, user_id),
    )
    return rid


def test_rows_past_retention_and_grace_are_deleted(factory: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORT_RETENTION_DAYS", "30")
    org = factory.org("Acme", alice=["learner"])
    alice = org.users["alice"]
    old = _report(factory, org.id, alice, 30 + GRACE_DAYS + 1)
    in_grace = _report(factory, org.id, alice, 31)
    young = _report(factory, org.id, alice, 1)

    handler = load_handler("expire_reports")
    result = invoke(handler, sample_event("expire_reports") | {"scheduledTime": datetime.now(UTC).isoformat()})
    assert result["status"] == "ok" and result["rowsWritten"] >= 1
    assert result["details"]["retentionDays"] == 30 and result["details"]["graceDays"] == GRACE_DAYS
    left = {r[0] for r in factory.sql("SELECT id FROM reports WHERE user_id = %s", (alice,))}
    assert left == {in_grace, young}
    assert factory.sql("SELECT count(*) FROM report_links WHERE report_id = %s", (old,)) == [(0,)]

    again = invoke(handler, {"date": (datetime.now(UTC) + timedelta(days=1)).date().isoformat()})
    assert again["status"] == "ok"
    assert {r[0] for r in factory.sql("SELECT id FROM reports WHERE user_id = %s", (alice,))} == {in_grace, young}
