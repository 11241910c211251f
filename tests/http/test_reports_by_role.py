"""Reports by role through the local gateway (`local.gateway serve`, real HTTP, tokens from the
local issuer, S3 on moto's server): a trainer downloads their cohort report and an org admin the
organization report, as a person would, and the numbers printed in the PDF are the numbers
GET /v1/learners, /v1/aggregates and /v1/cohorts answer."""

from __future__ import annotations

import http.client
import io
import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode, urlparse

import psycopg
import pypdf
import pytest

from local import s3 as local_s3
from local import stack, tokens
from ms8.jobs.rollups import roll_up
from ms8.jobs.runner import JobInput
from ms8.renderers.document import format_value
from ms8.renderers.population import TREND_COLUMNS
from tests.support.factories import Factory, Org
from tests.support.gateway import gateway_process

TODAY = datetime.now(UTC).date()
END = TODAY - timedelta(days=1)
START = END - timedelta(days=27)  # 28 days: daily rollups


@dataclass
class Site:
    url: str
    org: Org

    def call(self, method: str, path: str, user: str | None = None, body: Any = None, token: str | None = None,
             query: dict[str, str] | None = None) -> tuple[int, Any]:
        parsed = urlparse(self.url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        try:
            bearer = token or tokens.user_token(self.org.users[user])  # type: ignore[index]
            headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
            target = path + (f"?{urlencode(query)}" if query else "")
            conn.request(method, target, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
        finally:
            conn.close()


def _event(user: uuid.UUID, verb: str, day_offset: int, obj: str, **result: Any) -> dict[str, Any]:
    at = datetime.combine(START + timedelta(days=day_offset), time(9), UTC)
    return {"eventId": str(uuid.uuid4()), "userId": str(user), "verb": verb, "objectId": obj,
            "objectType": "course", "skills": ["sql"] if "score" in result else [], "occurredAt": at.isoformat(),
            **({"result": result} if result else {})}


@pytest.fixture(scope="module")
def site(owner_url: str, database: str) -> Iterator[Site]:
    store = local_s3.S3(port=0, data_dir=None)  # links are checked as S3 checks them
    bucket = f"ms8-roles-{uuid.uuid4().hex[:10]}"
    endpoint = store.start(bucket)
    try:
        env = stack.function_env(endpoint, db=database)
        env["REPORTS_BUCKET"] = bucket
        with psycopg.connect(owner_url, autocommit=True) as conn, gateway_process(env) as running:
            factory = Factory(conn)
            org = factory.org("Ακαδημία Gülşen 学院", tina=["trainer"], tom=["trainer"], ada=["org_admin"])
            names = {"lukasz": "Łukasz Nowak", "olga": "Ольга Петрова", "mei": "王美", "nikos": "Νίκος"}
            for key, name in names.items():
                org.users[key] = factory.user(org.id, ["learner"], name=name)
            for learner in ("lukasz", "olga", "mei"):
                factory.assign(org.id, org.users["tina"], org.users[learner])
            factory.assign(org.id, org.users["tom"], org.users["nikos"])
            factory.sql("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.7)",
                        (org.id,))
            site = Site(running.url, org)
            u = org.users
            events = [_event(u["lukasz"], "completed", d, f"l{d}", durationSeconds=900) for d in range(0, 28, 3)]
            events += [_event(u["olga"], "completed", d, f"o{d}") for d in range(0, 12, 2)]
            events += [_event(u["olga"], "failed", 3, "quiz", score=0.35),
                       _event(u["mei"], "passed", 20, "quiz", score=0.9),
                       _event(u["mei"], "session", 26, "s", durationSeconds=2400),
                       _event(u["nikos"], "completed", 27, "n1")]
            client = factory.service_client(f"roles-ingest-{uuid.uuid4().hex[:6]}", ["ingest"], org.id)
            status, body = site.call("POST", "/v1/events", body={"events": events},
                                     token=tokens.service_token(client, ["ingest"]))
            assert (status, body["inserted"]) == (200, len(events)), body
            with conn.transaction():  # the nightly rollup job, as a backfill
                conn.execute("SELECT app.begin_maintenance()")
                roll_up(conn, JobInput(TODAY, datetime.combine(TODAY, time(), UTC), days=35, replay=True))
            yield site
    finally:
        store.stop()


def _download(site: Site, user: str, fmt: str, **extra: Any) -> tuple[dict[str, Any], bytes]:
    status, report = site.call("POST", "/v1/reports", user, {"format": fmt, "from": START.isoformat(),
                                                              "to": END.isoformat(), **extra})
    assert status == 201, report
    with urllib.request.urlopen(report["download"]["url"], timeout=30) as resp:  # noqa: S310 - local S3
        return report, resp.read()


def _pdf_words(body: bytes) -> str:
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(body)).pages)
    return " ".join(text.split())


def _trend_line(item: dict[str, Any]) -> str:
    values = [item["periodStart"], item["learners"], item["activeLearners"], item["activeShare"],
              item["completions"], item["velocity"], item["assessments"], item["meanScore"],
              item["minutesPerActiveLearner"]]
    return " ".join(format_value(c.kind, v) for c, v in zip(TREND_COLUMNS, values, strict=True))


def test_trainer_downloads_the_cohort_report_and_its_numbers_are_the_apis(site: Site) -> None:
    report, body = _download(site, "tina", "pdf")
    assert report["kind"] == "cohort" and report["download"]["contentType"] == "application/pdf"
    words = _pdf_words(body)
    assert "Cohort learning report" in words and "Ακαδημία Gülşen 学院" in words
    status, learners = site.call("GET", "/v1/learners", "tina")
    assert status == 200 and {i["displayName"] for i in learners["items"]} == {"Łukasz Nowak", "Ольга Петрова", "王美"}
    for item in learners["items"]:
        m = item["metrics"]
        line = " ".join([item["displayName"], format_value("number", m["velocity"]),
                         format_value("number", item["trend"]["velocity"]), format_value("ratio", m["engagement"]),
                         format_value("ratio", m["mastery"]), format_value("ratio", m["skillGap"])])
        assert line in words, line
        for reason in item["riskReasons"]:
            assert " ".join(reason["message"].split()) in words
    assert "Νίκος" not in words  # tom's learner: not tina's to see
    status, trends = site.call("GET", "/v1/aggregates", "tina", query={
        "granularity": "daily", "from": START.isoformat(), "to": END.isoformat()})
    assert status == 200 and trends["scope"] == "cohort" and len(trends["items"]) == 28
    for item in trends["items"]:
        assert _trend_line(item) in words, _trend_line(item)


def test_org_admin_downloads_the_organization_report_and_its_numbers_are_the_apis(site: Site) -> None:
    report, body = _download(site, "ada", "pdf")
    assert report["kind"] == "organization"
    words = _pdf_words(body)
    assert "Organization learning report" in words
    status, trends = site.call("GET", "/v1/aggregates", "ada", query={
        "granularity": "daily", "from": START.isoformat(), "to": END.isoformat()})
    assert status == 200 and trends["scope"] == "organization" and len(trends["items"]) == 28
    for item in trends["items"]:
        assert _trend_line(item) in words, _trend_line(item)
    status, cohorts = site.call("GET", "/v1/cohorts", "ada")
    assert status == 200 and len(cohorts["items"]) == 2
    for c in cohorts["items"]:
        line = f"{c['displayName']} {c['learners']} {c['atRisk']} {format_value('ratio', c['activeShare'])}"
        assert line in words, line
    status, at_risk = site.call("GET", "/v1/learners", "ada", query={"atRisk": "true"})
    assert all(i["displayName"] in words for i in at_risk["items"])
    # The org admin may also take one trainer's cohort report.
    report, body = _download(site, "ada", "json", kind="cohort", trainerId=str(site.org.users["tom"]))
    doc = json.loads(body)
    assert [r["learner"] for r in next(t for t in doc["tables"] if t["name"] == "learners")["rows"]] == ["Νίκος"]


def test_a_learner_cannot_take_a_cohort_report(site: Site) -> None:
    status, body = site.call("POST", "/v1/reports", "lukasz", {"format": "pdf", "kind": "cohort"})
    assert (status, body["error"]["code"]) == (403, "REPORT_KIND_NOT_ALLOWED")
