"""POST /v1/reports, GET /v1/reports, GET /v1/reports/{reportId} through their handlers, on the
real database, with S3 served over HTTP by moto's server on 127.0.0.1: links are fetched as a
browser would."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import jsonschema
import openpyxl
import psycopg
import pypdf
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto.server import ThreadedMotoServer
from psycopg.types.json import Jsonb

from ms8 import config, storage
from ms8.reports.json_format import SCHEMA
from tests.api import Reply, call
from tests.factories import Factory, Org

TODAY = datetime.now(UTC).date()
END = TODAY - timedelta(days=1)
START = END - timedelta(days=13)
LINK_TTL = 120


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """A fresh bucket on the local S3 server; the functions reach it through S3_ENDPOINT_URL."""
    name = f"ms8-reports-{uuid.uuid4().hex[:12]}"
    for key, value in {"S3_ENDPOINT_URL": s3_server, "REPORTS_BUCKET": name, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "REPORT_LINK_TTL": str(LINK_TTL)}.items():
        monkeypatch.setenv(key, value)
    config.settings.cache_clear()
    storage.s3_client.cache_clear()
    client = boto3.client("s3", endpoint_url=s3_server, region_name="eu-west-1")
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    yield client, name
    storage.s3_client.cache_clear()
    config.settings.cache_clear()


def _keys(bucket: tuple[Any, str]) -> list[str]:
    client, name = bucket
    return [o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", [])]


def _event(factory: Factory, org: Org, user: str, day: date, verb: str, **extra: Any) -> None:
    factory.sql(
        "INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, skills, "
        "score, duration_seconds, occurred_at) VALUES (%s, %s, %s, %s, %s, 'course', %s, %s, %s, %s)",
        (uuid.uuid4(), org.users[user], org.id, verb, extra.get("object", "course-1"), extra.get("skills", []),
         extra.get("score"), extra.get("seconds"), datetime(day.year, day.month, day.day, 12, tzinfo=UTC)),
    )


@pytest.fixture
def org(factory: Factory) -> Org:
    """Acme: alice with a fortnight of activity, bob, trainer tina, admin ada, and daily rollups."""
    o = factory.org("Acme Learning", alice=["learner"], bob=["learner"], tina=["trainer"], ada=["org_admin"])
    factory.sql("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.8)", (o.id,))
    _event(factory, o, "alice", START, "completed", object="course-1")
    _event(factory, o, "alice", START, "completed", object="course-2")
    _event(factory, o, "alice", START, "session", seconds=1800)
    _event(factory, o, "alice", START + timedelta(days=1), "passed", score=0.6, skills=["sql"])
    _event(factory, o, "alice", END, "session", seconds=600)
    _event(factory, o, "bob", START, "completed")
    factory.analytics(o.id, o.users["alice"], "learner", "mastery", {"mastery": 0.6, "skills": {"sql": 0.6}})
    for i in range(3):
        factory.sql(
            "INSERT INTO aggregated_analytics (organization_id, granularity, role, analytics_type, period_start, "
            "period_end, user_count, data) VALUES (%s, 'daily', 'learner', 'engagement', %s, %s, %s, %s)",
            (o.id, START + timedelta(days=i), START + timedelta(days=i + 1), 12 + i,
             Jsonb({"metric": "engagement", "avg": 0.5 + i / 10, "p25": 0.3, "p50": 0.5, "p75": 0.7})),
        )
    return o


@pytest.fixture
def other(factory: Factory) -> Org:
    return factory.org("Globex", xavier=["learner"], yan=["org_admin"])


def _create(org: Org, user: str, fmt: str, **body: Any) -> Reply:
    payload = {"format": fmt, "from": START.isoformat(), "to": END.isoformat(), **body}
    return call("POST", "/v1/reports", sub=org.users[user], body=payload)


def _fetch(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our local S3 server
        return response.read(), {k.lower(): v for k, v in response.headers.items()}


def _links(factory: Factory, report_id: str) -> list[tuple[Any, ...]]:
    return factory.sql(
        "SELECT user_id, issued_at, expires_at FROM report_links WHERE report_id = %s ORDER BY issued_at", (report_id,))


@pytest.mark.parametrize("fmt", ["csv", "json", "excel", "pdf"])
def test_learner_report_in_each_format_is_stored_and_downloadable(
    fmt: str, org: Org, factory: Factory, bucket: tuple[Any, str]
) -> None:
    r = _create(org, "alice", fmt)
    assert r.status == 201, r.body
    report = r.body
    ext = {"excel": "xlsx"}.get(fmt, fmt)
    assert report["status"] == "ready" and report["kind"] == "personal" and report["format"] == fmt
    assert report["period"] == {"from": START.isoformat(), "to": END.isoformat()}
    assert report["types"] == ["learning_velocity", "engagement", "mastery", "skill_gap"]
    download = report["download"]
    assert download["fileName"] == f"learning-report-personal-{START}-to-{END}.{ext}"

    body, headers = _fetch(download["url"])
    assert len(body) == report["sizeBytes"]
    assert hashlib.sha256(body).hexdigest() == report["checksumSha256"]
    assert headers["content-type"] == download["contentType"]
    assert headers["content-disposition"] == f'attachment; filename="{download["fileName"]}"'
    assert parse_qs(urlparse(download["url"]).query)["X-Amz-Expires"] == [str(LINK_TTL)]

    key = f"reports/{org.id}/{org.users['alice']}/{report['id']}.{ext}"
    assert _keys(bucket) == [key]
    head = bucket[0].head_object(Bucket=bucket[1], Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert factory.sql("SELECT status, s3_key, size_bytes, checksum_sha256 FROM reports WHERE id = %s",
                       (report["id"],)) == [("ready", key, len(body), report["checksumSha256"])]
    [(who, issued, expires)] = _links(factory, report["id"])
    assert who == org.users["alice"] and expires - issued == timedelta(seconds=LINK_TTL)

    # The file holds alice's fortnight: 2 completions and 30 minutes on the first day, a 0.6 score
    # on the second (sql, target 0.8: the gap goes from 0.8 to 0.2). Parsed back with each
    # format's own reader.
    if fmt == "csv":
        rows = {(r["date"], r["analytics_type"]): r for r in csv.DictReader(io.StringIO(body.decode("utf-8")))}
        assert len(rows) == 14 * 4
        assert rows[(START.isoformat(), "learning_velocity")]["completions"] == "2"
        assert rows[(START.isoformat(), "engagement")]["minutes"] == "30"
        assert rows[(START.isoformat(), "skill_gap")]["gap"] == "0.8"
        assert rows[((START + timedelta(days=1)).isoformat(), "skill_gap")]["gap"] == "0.2"
    elif fmt == "json":
        doc = json.loads(body)
        jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
        assert doc["person"] == {"id": str(org.users["alice"]), "name": "alice", "role": "learner"}
        assert doc["organization"]["name"] == "Acme Learning"
        assert doc["snapshots"][0]["metrics"] == {"mastery": 0.6, "skills.sql": 0.6}
        assert [c["available"] for c in doc["comparison"]] == [False] * 4  # fewer than 10 peers
        mastery = next(s for s in doc["series"] if s["analyticsType"] == "mastery")
        assert mastery["rows"][1]["values"]["mastery"] == pytest.approx(0.6)
    elif fmt == "excel":
        wb = openpyxl.load_workbook(io.BytesIO(body))
        sheet = wb["Learning velocity"]
        assert sheet.freeze_panes == "A2" and sheet["A2"].value.date() == START and sheet["C2"].value == 2
    else:
        text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(body)).pages)
        assert "Personal learning report" in text and "Acme Learning" in text and "alice (Learner)" in text


def test_org_admin_report_holds_the_organizations_rollups(org: Org, bucket: tuple[Any, str]) -> None:
    r = _create(org, "ada", "json", types=["engagement"])
    assert r.status == 201, r.body
    assert r.body["kind"] == "organization" and r.body["role"] == "org_admin"
    doc = json.loads(_fetch(r.body["download"]["url"])[0])
    assert doc["report"]["kind"] == "organization" and doc["snapshots"] == [] and doc["comparison"] == []
    [series] = doc["series"]
    assert [row["values"]["user_count"] for row in series["rows"][:4]] == [12, 13, 14, None]
    assert series["rows"][1]["values"]["avg"] == pytest.approx(0.6)


def test_every_read_issues_a_fresh_recorded_link_to_those_who_may_read(
    org: Org, other: Org, factory: Factory, bucket: tuple[Any, str]
) -> None:
    report = _create(org, "alice", "csv").body
    rid = report["id"]
    first = call("GET", f"/v1/reports/{rid}", sub=org.users["alice"])
    second = call("GET", f"/v1/reports/{rid}", sub=org.users["alice"])
    admin = call("GET", f"/v1/reports/{rid}", sub=org.users["ada"])
    for r in (first, second, admin):
        assert r.status == 200, r.body
        assert r.body["status"] == "ready" and r.body["checksumSha256"] == report["checksumSha256"]
        assert _fetch(r.body["download"]["url"])[0].startswith(b"date,analytics_type,")
    assert [row[0] for row in _links(factory, rid)] == [org.users["alice"]] * 3 + [org.users["ada"]]

    # Another learner, a trainer, another organization's admin and learner, an unknown id: 404 alike.
    for sub in (org.users["bob"], org.users["tina"], other.users["yan"], other.users["xavier"]):
        r = call("GET", f"/v1/reports/{rid}", sub=sub)
        assert (r.status, r.error_code) == (404, "NOT_FOUND"), sub
    r = call("GET", f"/v1/reports/{uuid.uuid4()}", sub=org.users["alice"])
    assert (r.status, r.error_code) == (404, "NOT_FOUND")
    r = call("GET", "/v1/reports/not-a-uuid", sub=org.users["alice"])
    assert r.status == 422 and r.error_code == "VALIDATION_ERROR"
    assert len(_links(factory, rid)) == 4  # no link for those refused


def test_list_is_own_newest_first_paged_and_the_org_admin_sees_the_organization(
    org: Org, other: Org, bucket: tuple[Any, str]
) -> None:
    mine = [_create(org, "alice", "json").body["id"] for _ in range(3)]
    bobs = _create(org, "bob", "csv").body["id"]
    _create(other, "xavier", "csv")

    page = call("GET", "/v1/reports", sub=org.users["alice"], query={"limit": "2"})
    assert page.status == 200, page.body
    assert [i["id"] for i in page.body["items"]] == mine[::-1][:2]
    assert all("download" not in i or i["download"] is None for i in page.body["items"])
    rest = call("GET", "/v1/reports", sub=org.users["alice"], query={"limit": "2", "cursor": page.body["nextCursor"]})
    assert [i["id"] for i in rest.body["items"]] == [mine[0]] and rest.body["nextCursor"] is None

    admin = call("GET", "/v1/reports", sub=org.users["ada"])
    assert [i["id"] for i in admin.body["items"]] == [bobs, *mine[::-1]]
    assert call("GET", "/v1/reports", sub=other.users["yan"]).body["items"][0]["userId"] == str(other.users["xavier"])

    for query in ({"cursor": "garbage!"}, {"cursor": "MjAyNnxub3BlCg"}):
        r = call("GET", "/v1/reports", sub=org.users["alice"], query=query)
        assert (r.status, r.error_code) == (400, "INVALID_CURSOR")
    r = call("GET", "/v1/reports", sub=org.users["alice"], query={"limit": "0"})
    assert r.status == 422


@pytest.mark.parametrize("body", [
    {"format": "docx"},
    {},
    {"format": "csv", "from": "2026-02-01", "to": "2026-01-01"},
    {"format": "csv", "from": "2025-01-01", "to": "2026-01-02"},
    {"format": "csv", "types": []},
    {"format": "csv", "types": ["mastery", "mastery"]},
    {"format": "csv", "types": ["happiness"]},
    {"format": "csv", "from": "yesterday"},
    {"format": "csv", "color": "red"},
])
def test_bad_requests_are_422_and_write_nothing(body: dict[str, Any], org: Org, factory: Factory,
                                                bucket: tuple[Any, str]) -> None:
    r = call("POST", "/v1/reports", sub=org.users["alice"], body=body)
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), r.body
    r = call("POST", "/v1/reports", sub=org.users["alice"], raw_body="{not json",
             headers={"content-type": "application/json"})
    assert 400 <= r.status < 500 and r.body["error"]["code"]
    assert factory.sql("SELECT count(*) FROM reports WHERE organization_id = %s", (org.id,)) == [(0,)]
    assert _keys(bucket) == []


def test_a_full_year_of_daily_data_is_accepted(org: Org, bucket: tuple[Any, str]) -> None:
    r = call("POST", "/v1/reports", sub=org.users["alice"], body={
        "format": "pdf", "from": (END - timedelta(days=365)).isoformat(), "to": END.isoformat()})
    assert r.status == 201, r.body
    assert pypdf.PdfReader(io.BytesIO(_fetch(r.body["download"]["url"])[0])).pages


def _refuse(monkeypatch: pytest.MonkeyPatch, *, store_first: bool) -> None:
    client = storage.s3_client()
    real = client.put_object

    def put_object(**kwargs: Any) -> Any:
        if store_first:  # S3 stored the file, but the answer never arrived
            real(**kwargs)
            raise ReadTimeoutError(endpoint_url="http://s3")
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject")

    monkeypatch.setattr(client, "put_object", put_object)


@pytest.mark.parametrize("store_first", [False, True], ids=["refused", "timeout-after-store"])
def test_s3_failure_leaves_a_failed_row_and_no_object(
    store_first: bool, org: Org, factory: Factory, bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _refuse(monkeypatch, store_first=store_first)
    r = _create(org, "alice", "csv")
    assert (r.status, r.error_code) == (503, "STORAGE_UNAVAILABLE"), r.body
    assert r.body["error"]["requestId"] and "Traceback" not in json.dumps(r.body)
    [(rid, status, key, size, error)] = factory.sql(
        "SELECT id, status, s3_key, size_bytes, error FROM reports WHERE user_id = %s", (org.users["alice"],))
    assert (status, key, size) == ("failed", None, None)
    assert ("AccessDenied" if not store_first else "ReadTimeoutError") in error
    assert str(rid) in r.body["error"]["message"]
    assert _keys(bucket) == []

    monkeypatch.undo()
    got = call("GET", f"/v1/reports/{rid}", sub=org.users["alice"])
    assert got.status == 200 and got.body["status"] == "failed" and got.body["download"] is None
    assert _links(factory, str(rid)) == []


def test_a_transaction_that_fails_after_the_upload_leaves_nothing(
    org: Org, factory: Factory, bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ms8.repositories import reports as repo

    def broken(*_: Any, **__: Any) -> None:
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    monkeypatch.setattr(repo, "record_link", broken)
    r = _create(org, "alice", "csv")
    assert r.status == 503 and r.error_code == "TIMEOUT"
    assert factory.sql("SELECT count(*) FROM reports WHERE user_id = %s", (org.users["alice"],)) == [(0,)]
    assert _keys(bucket) == []


def test_erasing_the_user_deletes_their_report_files(org: Org, bucket: tuple[Any, str]) -> None:
    kept = _create(org, "bob", "csv").body
    for fmt in ("csv", "pdf"):
        assert _create(org, "alice", fmt).status == 201
    assert len(_keys(bucket)) == 3
    r = call("DELETE", f"/v1/users/{org.users['alice']}", sub=org.users["ada"])
    assert r.status == 200, r.body
    assert r.body["reportFilesDeleted"] == 2
    assert _keys(bucket) == [f"reports/{org.id}/{org.users['bob']}/{kept['id']}.csv"]


def test_a_report_past_retention_is_expired_without_a_link(
    org: Org, factory: Factory, bucket: tuple[Any, str]
) -> None:
    rid = _create(org, "alice", "csv").body["id"]
    factory.sql("UPDATE reports SET created_at = now() - interval '31 days' WHERE id = %s", (rid,))
    r = call("GET", f"/v1/reports/{rid}", sub=org.users["alice"])
    assert r.status == 200 and r.body["status"] == "expired" and r.body["download"] is None
    assert len(_links(factory, rid)) == 1  # the one of its creation only


def test_peer_comparison_appears_only_for_groups_of_ten(factory: Factory, bucket: tuple[Any, str]) -> None:
    o = factory.org("Initech", **{f"l{i:02d}": ["learner"] for i in range(10)})
    for i, uid in enumerate(o.users.values()):
        factory.analytics(o.id, uid, "learner", "mastery", {"mastery": 0.5 + i / 100})
    factory.analytics(o.id, o.users["l00"], "learner", "engagement", {"engagement": 0.4})  # a group of one
    factory.refresh_comparison()
    r = _create(o, "l00", "json", types=["mastery", "engagement"])
    assert r.status == 201, r.body
    mastery, engagement = json.loads(_fetch(r.body["download"]["url"])[0])["comparison"]
    assert mastery["available"] and mastery["peers"]["userCount"] == 10 and mastery["yourValue"] == 0.5
    assert 0 <= mastery["peers"]["average"] <= 1  # noisy around 0.545 (docs/SECURITY.md)
    assert not engagement["available"] and engagement["peers"] is None and engagement["yourValue"] == 0.4
