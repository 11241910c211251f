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
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse
from uuid import UUID

import boto3
import jsonschema
import openpyxl
import psycopg
import pypdf
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto.server import ThreadedMotoServer
from psycopg.types.json import Jsonb

from ms8 import config, db, storage
from ms8.jobs.rollups import roll_up
from ms8.jobs.runner import JobInput
from ms8.renderers.document import format_value
from ms8.renderers.json_format import SCHEMA
from ms8.renderers.population import TREND_COLUMNS
from ms8.schemas.events import EventBatch
from ms8.services import ingest
from tests.support.api import Reply, call
from tests.support.factories import Factory, Org

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
        rows = {(r["date"], r["analytics_type"]): r for r in csv.DictReader(io.StringIO(body.decode("utf-8-sig")))}
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


# --- cohort and organization reports: the API's figures, by role ---

R_END = TODAY - timedelta(days=1)
R_START = R_END - timedelta(days=34)  # 35 days: weekly rollups


def _ingest(org: UUID, events: list[dict[str, Any]]) -> None:
    """As the platform bus (the learner days and points are kept as in production)."""
    with db.runtime.transaction(db.as_service("platform-bus", "ingest", org)) as (conn, caller):
        ingest.ingest(conn, caller, EventBatch.model_validate({"events": events}), datetime.now(UTC))


def _ev(user: UUID, verb: str, day: date, obj: str, score: float | None = None, seconds: int | None = None,
        skills: tuple[str, ...] = ()) -> dict[str, Any]:
    result = {k: v for k, v in (("score", score), ("durationSeconds", seconds)) if v is not None}
    return {"eventId": str(uuid.uuid4()), "userId": str(user), "verb": verb, "objectId": obj,
            "objectType": "course", "skills": list(skills),
            "occurredAt": datetime(day.year, day.month, day.day, 10, tzinfo=UTC).isoformat(),
            **({"result": result} if result else {})}


@pytest.fixture
def cohorts(factory: Factory) -> Org:
    """Acme: tina's cohort (Łukasz, Gülşen, 李小龍), tom's (Жанна); admin ada; a learner in no cohort."""
    o = factory.org("Acme Łódź 東京", tina=["trainer"], tom=["trainer"], ada=["org_admin"])
    names = {"lukasz": "Łukasz Żółć", "gulsen": "Gülşen Demir", "li": "李小龍", "zhanna": "Жанна Иванова",
             "nobody": "Ελένη"}
    for key, name in names.items():
        o.users[key] = factory.user(o.id, ["learner"], name=name)
    for learner in ("lukasz", "gulsen", "li"):
        factory.assign(o.id, o.users["tina"], o.users[learner])
    factory.assign(o.id, o.users["tom"], o.users["zhanna"])
    factory.sql("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.8)", (o.id,))
    u = o.users
    events = []
    for week in range(5):  # Łukasz: two completions a week, a quiz in the first week
        day = R_START + timedelta(days=7 * week + 1)
        events += [_ev(u["lukasz"], "completed", day, f"c{week}a", seconds=1200),
                   _ev(u["lukasz"], "completed", day + timedelta(days=1), f"c{week}b", seconds=600)]
    events.append(_ev(u["lukasz"], "passed", R_START + timedelta(days=2), "quiz", score=0.9, skills=("sql",)))
    # Gülşen: busy in the first weeks, silent for the last 12 days (inactive, velocity dropped).
    events += [_ev(u["gulsen"], "completed", R_START + timedelta(days=d), f"g{d}", seconds=900) for d in range(10, 22)]
    events.append(_ev(u["gulsen"], "failed", R_START + timedelta(days=12), "quiz", score=0.3, skills=("sql",)))
    events.append(_ev(u["li"], "session", R_END - timedelta(days=1), "s1", seconds=1800))
    events.append(_ev(u["zhanna"], "completed", R_END, "z1"))
    _ingest(o.id, events)
    with factory.conn.transaction():
        factory.conn.execute("SELECT app.begin_maintenance()")
        roll_up(factory.conn, JobInput(TODAY, datetime.combine(TODAY, time(), UTC), days=40, replay=True))
    return o


def _report(org: Org, user: str, fmt: str, **body: Any) -> Reply:
    payload = {"format": fmt, "from": R_START.isoformat(), "to": R_END.isoformat(), **body}
    return call("POST", "/v1/reports", sub=org.users[user], body=payload)


def _table(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in doc["tables"] if t["name"] == name)


def _pdf_text(body: bytes) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(body)).pages)


def _learner_cells(item: dict[str, Any]) -> dict[str, Any]:
    """A GET /v1/learners item as the report's learners table names its columns."""
    m = item["metrics"]
    return {"learner": item["displayName"], "velocity": m["velocity"], "velocity_change": item["trend"]["velocity"],
            "engagement": m["engagement"], "mastery": m["mastery"], "skill_gap": m["skillGap"],
            "last_activity_at": item["lastActivityAt"],
            "at_risk": ", ".join(r["code"].replace("_", " ") for r in item["riskReasons"]) or None}


def _rollup_cells(item: dict[str, Any]) -> dict[str, Any]:
    return {"period_start": item["periodStart"], "learners": item["learners"],
            "active_learners": item["activeLearners"], "active_share": item["activeShare"],
            "completions": item["completions"], "velocity": item["velocity"], "assessments": item["assessments"],
            "mean_score": item["meanScore"], "minutes_per_active_learner": item["minutesPerActiveLearner"]}


def _same_instant(a: str | None, b: str | None) -> bool:
    return a == b or (a is not None and b is not None and datetime.fromisoformat(a) == datetime.fromisoformat(b))


def test_trainer_gets_the_cohort_report_with_the_apis_figures(cohorts: Org, bucket: tuple[Any, str]) -> None:
    tina = cohorts.users["tina"]
    r = _report(cohorts, "tina", "json")
    assert r.status == 201, r.body
    assert (r.body["kind"], r.body["trainerId"]) == ("cohort", str(tina))
    assert r.body["download"]["fileName"] == f"learning-report-cohort-{R_START}-to-{R_END}.json"
    doc = json.loads(_fetch(r.body["download"]["url"])[0])
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["report"]["kind"] == "cohort" and doc["series"] == []
    assert doc["report"]["subject"] == "Cohort of tina (3 learners)"

    api = call("GET", "/v1/learners", sub=tina).body
    rows = _table(doc, "learners")["rows"]
    assert [row["learner"] for row in rows] == [i["displayName"] for i in api["items"]]
    assert {row["learner"] for row in rows} == {"Łukasz Żółć", "Gülşen Demir", "李小龍"}  # not tom's Жанна
    for row, item in zip(rows, api["items"], strict=True):
        expected = _learner_cells(item)
        assert _same_instant(row.pop("last_activity_at"), expected.pop("last_activity_at"))
        assert row == expected
    at_risk = [i["displayName"] for i in api["items"] if i["atRisk"]]
    assert "Gülşen Demir" in at_risk  # twelve silent days
    assert [row["learner"] for row in _table(doc, "at_risk")["rows"]] == at_risk

    trends = call("GET", "/v1/aggregates", sub=tina, query={
        "granularity": "weekly", "from": R_START.isoformat(), "to": R_END.isoformat()}).body
    assert trends["scope"] == "cohort" and len(trends["items"]) >= 4
    assert _table(doc, "trends")["rows"] == [_rollup_cells(i) for i in trends["items"]]


def test_the_cohort_pdf_prints_the_apis_numbers(cohorts: Org, bucket: tuple[Any, str]) -> None:
    tina = cohorts.users["tina"]
    r = _report(cohorts, "tina", "pdf")
    assert r.status == 201, r.body
    text = _pdf_text(_fetch(r.body["download"]["url"])[0])
    assert "Cohort learning report" in text and "Acme Łódź 東京" in text and "Cohort of tina (3 learners)" in text
    flat = " ".join(text.split())  # a table row's cells, in order, whatever the line breaks
    for item in call("GET", "/v1/learners", sub=tina).body["items"]:
        m = item["metrics"]
        printed = (f"{item['displayName']} {format_value('number', m['velocity'])} "
                   f"{format_value('number', item['trend']['velocity'])} {format_value('ratio', m['engagement'])} "
                   f"{format_value('ratio', m['mastery'])} {format_value('ratio', m['skillGap'])}")
        assert printed in flat, printed
    for item in call("GET", "/v1/aggregates", sub=tina, query={
            "granularity": "weekly", "from": R_START.isoformat(), "to": R_END.isoformat()}).body["items"]:
        cells = _rollup_cells(item)
        kinds = [c.kind for c in TREND_COLUMNS]
        printed = " ".join(format_value(k, v) for k, v in zip(kinds, cells.values(), strict=True))
        assert printed in flat, printed


def test_org_admin_gets_the_organization_report_with_the_apis_figures(
    cohorts: Org, bucket: tuple[Any, str]
) -> None:
    ada = cohorts.users["ada"]
    r = _report(cohorts, "ada", "json")
    assert r.status == 201, r.body
    assert (r.body["kind"], r.body["trainerId"]) == ("organization", None)
    doc = json.loads(_fetch(r.body["download"]["url"])[0])
    trends = call("GET", "/v1/aggregates", sub=ada, query={
        "granularity": "weekly", "from": R_START.isoformat(), "to": R_END.isoformat()}).body
    assert trends["scope"] == "organization"
    assert _table(doc, "trends")["rows"] == [_rollup_cells(i) for i in trends["items"]]
    api = call("GET", "/v1/cohorts", sub=ada).body
    assert _table(doc, "cohorts")["rows"] == [
        {"trainer": c["displayName"], "learners": c["learners"], "at_risk": c["atRisk"],
         "active_share": c["activeShare"]} for c in api["items"]]
    assert {c["trainer"]: c["learners"] for c in _table(doc, "cohorts")["rows"]} == {"tina": 3, "tom": 1}
    risky = call("GET", "/v1/learners", sub=ada, query={"atRisk": "true"}).body["items"]
    assert [row["learner"] for row in _table(doc, "at_risk")["rows"]] == [i["displayName"] for i in risky]
    assert "learners" not in {t["name"] for t in doc["tables"]}

    pdf = _report(cohorts, "ada", "pdf")
    text = _pdf_text(_fetch(pdf.body["download"]["url"])[0])
    flat = " ".join(text.split())
    assert "Organization learning report" in text and "Trends per week" in text
    for item in trends["items"]:
        kinds = [c.kind for c in TREND_COLUMNS]
        printed = " ".join(format_value(k, v) for k, v in zip(kinds, _rollup_cells(item).values(), strict=True))
        assert printed in flat, printed
    # The old daily "engagement 1.0 / velocity x7" aggregates are gone from the organization report.
    assert "Learning velocity" not in text and "Engagement" not in text.replace("Engagement (30", "")

    wb = openpyxl.load_workbook(io.BytesIO(_fetch(_report(cohorts, "ada", "excel").body["download"]["url"])[0]))
    assert wb.sheetnames == ["Report", "Trends per week", "Trainer cohorts", "At risk"]
    sheet = wb["Trends per week"]
    assert [c.value for c in sheet[1]][:3] == ["Period", "Learners", "Active"]
    assert sheet.cell(2, 2).value == trends["items"][0]["learners"]
    csv_rows = list(csv.DictReader(io.StringIO(_fetch(_report(cohorts, "ada", "csv").body["download"]["url"])[0]
                                               .decode("utf-8-sig"))))
    assert [r["period_start"] for r in csv_rows if r["table"] == "trends"] == [
        i["periodStart"] for i in trends["items"]]


def test_org_admin_may_ask_for_any_trainers_cohort(cohorts: Org, bucket: tuple[Any, str]) -> None:
    r = _report(cohorts, "ada", "json", trainerId=str(cohorts.users["tom"]))
    assert (r.status, r.body["kind"]) == (201, "cohort")
    doc = json.loads(_fetch(r.body["download"]["url"])[0])
    assert [row["learner"] for row in _table(doc, "learners")["rows"]] == ["Жанна Иванова"]


@pytest.mark.parametrize(("user", "body", "status", "code"), [
    ("lukasz", {"kind": "cohort"}, 403, "REPORT_KIND_NOT_ALLOWED"),
    ("lukasz", {"kind": "organization"}, 403, "REPORT_KIND_NOT_ALLOWED"),
    ("tina", {"kind": "organization"}, 403, "REPORT_KIND_NOT_ALLOWED"),
    ("tina", {"kind": "cohort", "trainerId": "tom"}, 403, "REPORT_KIND_NOT_ALLOWED"),
    ("ada", {"kind": "cohort"}, 422, "VALIDATION_ERROR"),
    ("ada", {"kind": "organization", "trainerId": "tom"}, 422, "VALIDATION_ERROR"),
    ("ada", {"trainerId": "lukasz"}, 404, "NOT_FOUND"),  # not a trainer
    ("ada", {"kind": "team"}, 422, "VALIDATION_ERROR"),
])
def test_reports_by_role_refuse_what_the_role_may_not_see(
    cohorts: Org, factory: Factory, bucket: tuple[Any, str], user: str, body: dict[str, Any], status: int, code: str
) -> None:
    if "trainerId" in body:
        body = {**body, "trainerId": str(cohorts.users[body["trainerId"]])}
    r = _report(cohorts, user, "json", **body)
    assert (r.status, r.error_code) == (status, code), r.body
    assert factory.sql("SELECT count(*) FROM reports WHERE organization_id = %s", (cohorts.id,)) == [(0,)]
    assert _keys(bucket) == []


def test_a_learner_still_gets_the_personal_report(cohorts: Org, bucket: tuple[Any, str]) -> None:
    r = _report(cohorts, "lukasz", "json")
    assert (r.status, r.body["kind"]) == (201, "personal")
    doc = json.loads(_fetch(r.body["download"]["url"])[0])
    assert "tables" not in doc and doc["person"]["name"] == "Łukasz Żółć"


def test_the_learners_pdf_has_one_skill_gap(org: Org, factory: Factory, bucket: tuple[Any, str]) -> None:
    # alice's stored snapshot says gap 0 (computed before the target existed); her scores say
    # 0.8 - 0.6 = 0.2. The first page and the daily table both show the computed 20%.
    factory.analytics(org.id, org.users["alice"], "learner", "skill_gap", {"gap": 0.0, "skills": {}})
    r = _create(org, "alice", "json")
    doc = json.loads(_fetch(r.body["download"]["url"])[0])
    [snapshot] = [s for s in doc["snapshots"] if s["analyticsType"] == "skill_gap"]
    gap = next(s for s in doc["series"] if s["analyticsType"] == "skill_gap")
    assert snapshot["value"] == pytest.approx(0.2) == gap["rows"][-1]["values"]["gap"]
    [mine] = [c for c in doc["comparison"] if c["analyticsType"] == "skill_gap"]
    assert mine["yourValue"] == pytest.approx(0.2)


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
        assert _fetch(r.body["download"]["url"])[0].startswith(b"\xef\xbb\xbfdate,analytics_type,")
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
