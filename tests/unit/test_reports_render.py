"""Report files without AWS or a database: the daily series, and each format parsed back."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import jsonschema
import openpyxl
import pypdf
import pytest

from ms8.renderers import render
from ms8.renderers.csv_format import safe_text
from ms8.renderers.document import (
    SCHEMA_VERSION,
    Metric,
    PeerComparison,
    ReportData,
    Series,
    Snapshot,
    buckets,
    file_name,
    fold,
    format_value,
    period_days,
    table_granularity,
)
from ms8.renderers.json_format import SCHEMA
from ms8.renderers.series import DaySums, SkillDay, organization_series, personal_series

TYPES = ["learning_velocity", "engagement", "mastery", "skill_gap"]
START, END = date(2026, 3, 1), date(2026, 3, 14)
GENERATED = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
TARGETS = {"sql": 0.8, "python": 0.5, "stats": 0.4}
DECAY = 0.5 ** (1 / 30)  # a day's weight in mastery


def _personal(start: date = START, end: date = END, **names: str) -> ReportData:
    sums = [
        DaySums(start - timedelta(days=10), events=2, completed=frozenset("abcd"), sessions=1, minutes=30,
                score_sum=0.5, scored=1),
        DaySums(start, events=3, completed=frozenset("a"), sessions=2, minutes=45, score_sum=1.7, scored=2),
        DaySums(start + timedelta(days=2), events=1, sessions=1, minutes=20),
    ]
    skills = [SkillDay(start, "sql", 0.6, 1), SkillDay(start, "python", 0.9, 1)]
    return ReportData(
        uuid.uuid4(), "personal", uuid.uuid4(), names.get("org", "Acme"), uuid.uuid4(),
        names.get("person", "Alice"), "learner", start, end, "Europe/Berlin", GENERATED,
        personal_series(TYPES, start, end, sums, skills, TARGETS),
        snapshots=(Snapshot("mastery", "mastery", {"mastery": 0.85, "skills.sql": 0.6}, GENERATED),),
        comparison=(
            PeerComparison("mastery", "mastery", 0.85, True, 12, 0.7, 0.6, 0.72, 0.8),
            PeerComparison("engagement", "engagement", None, False, message="not enough peers"),
        ),
    )


def test_personal_series_follow_the_snapshot_definitions_day_by_day() -> None:
    data = _personal()
    by_type = {s.analytics_type: s for s in data.series}
    velocity = by_type["learning_velocity"].values
    # Objects a, b, c, d completed ten days before the period, a again on its first day: 4 distinct
    # objects in the trailing 4 weeks, 1 per week each.
    assert velocity["velocity"][0] == 1.0
    assert velocity["completions"][:3] == [1, 0, 0]
    engagement = by_type["engagement"].values
    assert engagement["engagement"][:3] == [round(2 / 30, 6), round(2 / 30, 6), round(3 / 30, 6)]
    assert engagement["engagement_7d"][:3] == [round(1 / 7, 6), round(1 / 7, 6), round(2 / 7, 6)]
    assert engagement["minutes"][:3] == [45, 0, 20] and engagement["sessions"][:3] == [2, 0, 1]
    mastery = by_type["mastery"].values
    weight = DECAY**10  # the score ten days before weighs less
    assert mastery["mastery"][0] == pytest.approx((0.5 * weight + 1.7) / (weight + 2), abs=1e-6)
    assert mastery["assessments"][:2] == [2, 0]
    # sql 0.8 - 0.6, python met, stats never assessed (a full 0.4): (0.2 + 0 + 0.4) / 3.
    assert by_type["skill_gap"].values["gap"][0] == pytest.approx(0.2)
    # 90 days later the scores have left the window: no mastery, and every target is missed in full.
    late = personal_series(["mastery", "skill_gap"], START, START + timedelta(days=100),
                           [DaySums(START, events=1, score_sum=0.5, scored=1)], [SkillDay(START, "sql", 0.5, 1)],
                           {"sql": 0.8})
    assert late[0].values["mastery"][89] == 0.5 and late[0].values["mastery"][90] is None
    assert late[1].values["gap"][89] == pytest.approx(0.3) and late[1].values["gap"][90] == pytest.approx(0.8)
    assert personal_series(["skill_gap"], START, END, [], [], {})[0].values["gap"] == [None] * 14


def test_organization_series_from_daily_rollups() -> None:
    rows = [("mastery", START, 14, {"metric": "mastery", "avg": 0.7, "p25": 0.6, "p50": 0.71, "p75": 0.8,
                                    "p90": 0.9, "min": 0.2, "max": 1.0}),
            ("mastery", START + timedelta(days=1), 11, {"avg": "oops"}),
            ("engagement", START, 3, {"avg": 0.5})]
    mastery, gap = organization_series(["mastery", "skill_gap"], START, END, rows)
    assert mastery.values["avg"][:3] == [0.7, None, None]
    assert mastery.values["user_count"][:3] == [14, 11, None]
    assert mastery.headline.band == ("p25", "p75")
    assert not gap.has_data()


def test_period_helpers() -> None:
    days = period_days(date(2026, 1, 28), date(2026, 3, 2))
    assert len(days) == 34 and table_granularity(len(days)) == "week"
    weeks = list(buckets(days, "week"))
    assert weeks[0].label == "2026-01-28 to 2026-02-01" and weeks[0].stop == 5
    months = list(buckets(days, "month"))
    assert [m.label for m in months] == ["January 2026", "February 2026", "March 2026"]
    assert fold([1, None, 2], "sum") == 3 and fold([None], "mean") is None and fold([1, 2], "mean") == 1.5
    assert format_value("ratio", 0.456) == "46%" and format_value("count", 3) == "3"
    assert format_value("number", 2.5) == "2.50" and format_value("count", None) == "\u2013"
    assert file_name("personal", START, END, "excel") == "learning-report-personal-2026-03-01-to-2026-03-14.xlsx"
    with pytest.raises(ValueError, match="one value per day"):
        ReportData(uuid.uuid4(), "personal", uuid.uuid4(), "A", uuid.uuid4(), "B", "learner", START, END, "UTC",
                   GENERATED, (Series("mastery", "", (Metric("m", "M", "ratio", "mean"),), {"m": [0.1]}),))


@pytest.mark.parametrize("value", ["=1+2", "+1", "-2+3", "@SUM(A1)", "\t=x", "\r=x"])
def test_csv_neutralises_formula_text(value: str) -> None:
    assert safe_text(value) == "'" + value
    assert safe_text("Acme") == "Acme"


def test_csv_parsed_back() -> None:
    data = _personal()
    evil = Series("=HYPERLINK(\"http://x\")", "", (Metric("m", "M", "count", "sum"),), {"m": [1] * 14})
    data = dataclasses.replace(data, series=(*data.series, evil))
    text = render(data, "csv").decode("utf-8-sig")  # UTF-8 (with its BOM), or this raises
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 14 * 5  # one row per day and type
    assert list(rows[0])[:3] == ["date", "analytics_type", "velocity"]
    first = {r["analytics_type"]: r for r in rows if r["date"] == "2026-03-01"}
    assert first["learning_velocity"]["velocity"] == "1" and first["learning_velocity"]["completions"] == "1"
    assert first["engagement"]["velocity"] == ""  # not a metric of this type
    assert first["engagement"]["minutes"] == "45"
    assert float(first["mastery"]["mastery"]) == pytest.approx((0.5 * DECAY**10 + 1.7) / (DECAY**10 + 2), abs=1e-6)
    assert first["skill_gap"]["gap"] == "0.2"
    assert {r["analytics_type"] for r in rows} >= {"'=HYPERLINK(\"http://x\")"}
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r.values())


def test_json_validates_against_its_schema() -> None:
    data = _personal()
    doc = json.loads(render(data, "json"))
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["schemaVersion"] == SCHEMA_VERSION
    assert doc["period"] == {"from": "2026-03-01", "to": "2026-03-14", "days": 14, "timezone": "Europe/Berlin"}
    assert doc["analyticsTypes"] == TYPES
    velocity = doc["series"][0]
    assert len(velocity["rows"]) == 14 and velocity["rows"][0] == {
        "date": "2026-03-01", "values": {"velocity": 1.0, "completions": 1}}
    assert doc["comparison"][0]["peers"]["userCount"] == 12 and doc["comparison"][1]["peers"] is None
    doc["series"][0]["rows"][0]["values"]["velocity"] = "fast"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_excel_opens_with_typed_cells_and_frozen_headers() -> None:
    data = _personal(org="=cmd|' /C calc'!A0", person="@Alice")
    wb = openpyxl.load_workbook(io.BytesIO(render(data, "excel")))
    assert wb.sheetnames == ["Report", "Learning velocity", "Engagement", "Mastery", "Skill gap"]
    report = wb["Report"]
    cells = {r[0].value: r[1] for r in report.iter_rows(min_row=3, max_row=11)}
    assert cells["Organization"].value == "=cmd|' /C calc'!A0" and cells["Organization"].data_type == "s"
    assert cells["Person"].value == "@Alice" and cells["Person"].data_type == "s"
    assert cells["Period from"].value == datetime(2026, 3, 1)
    assert cells["Generated (UTC)"].value == datetime(2026, 3, 15, 9, 30)
    for name in wb.sheetnames[1:]:
        ws = wb[name]
        assert ws.freeze_panes == "A2"
        assert ws.max_row == 15
        assert ws["A1"].value == "Date" and ws["A1"].font.bold
        assert isinstance(ws["A2"].value, datetime) and ws["A2"].value.date() == START
        assert ws["A2"].number_format == "yyyy-mm-dd"
    velocity = wb["Learning velocity"]
    assert velocity["B2"].value == 1.0 and isinstance(velocity["C2"].value, int)
    assert wb["Mastery"]["B2"].number_format == "0.0%"
    assert wb["Skill gap"]["B2"].value == pytest.approx(0.2)
    assert wb["Engagement"]["E3"].value == 0 and wb["Engagement"]["E4"].value == 20


def test_pdf_text_has_title_block_sections_and_tables() -> None:
    data = _personal(org="Acme <Learning> & Co", person="Zoë O'Hara")
    reader = pypdf.PdfReader(io.BytesIO(render(data, "pdf")))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in ("Personal learning report", "Acme <Learning> & Co", "Zoë O'Hara (Learner)",
                     "01 March 2026 \u2013 14 March 2026", "Europe/Berlin", "15 March 2026, 09:30 UTC",
                     str(data.report_id), "Your latest values beside your peers", "Fewer than 10 peers",
                     "Learning velocity", "Engagement", "Mastery", "Skill gap", "Completions per day",
                     "One row per day.", "2026-03-01", f"Page 1 of {len(reader.pages)}"):
        assert expected in text, expected
    assert reader.metadata is not None and reader.metadata.title.startswith("Personal learning report")


def test_pdf_of_a_year_of_an_organization() -> None:
    start, end = date(2025, 1, 1), date(2025, 12, 31)
    rows = [("engagement", d, 20, {"avg": 0.5, "p25": 0.3, "p75": 0.7}) for d in period_days(start, end)]
    data = ReportData(uuid.uuid4(), "organization", uuid.uuid4(), "Globex", uuid.uuid4(), "Ada", "org_admin",
                      start, end, "UTC", GENERATED, organization_series(["engagement", "skill_gap"], start, end, rows))
    reader = pypdf.PdfReader(io.BytesIO(render(data, "pdf")))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Organization learning report" in text and "Ada (Organization admin)" in text
    assert "January 2025" in text and "December 2025" in text and "One row per month" in text
    assert "No data in this period." in text  # skill_gap has no rollups
