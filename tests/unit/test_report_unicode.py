"""Reports in any script: names and organization names in Latin extended, Cyrillic, Greek, Chinese,
Japanese and Korean come out of every format as written; in the PDF, the embedded fonts set
them (the text extracted from the file holds them, and each glyph comes from a font that has it)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import uuid
from datetime import UTC, date, datetime

import openpyxl
import pypdf
import pytest

from ms8.renderers import fonts, render
from ms8.renderers.document import Metric, ReportData, Series, period_days
from ms8.renderers.series import DaySums, personal_series

ORG = "Gülşen Akademi · Учебный центр · 東京学院"
PERSON = "Łukasz Żółć"
NAMES = ["Łukasz", "Gülşen", "Жанна Иванова", "Ελένη Παπαδοπούλου", "李小龍", "김민준", "さくら", "Nguyễn Thị Hà"]
START, END = date(2026, 3, 1), date(2026, 3, 7)


def _data(person: str = PERSON, org: str = ORG) -> ReportData:
    sums = [DaySums(START, events=3, completed=frozenset("a"), sessions=1, minutes=30, score_sum=0.8, scored=1)]
    series = personal_series(["learning_velocity", "engagement"], START, END, sums, [], {})
    # Extra series named in every script, so names appear in section heads and tables as well.
    extra = tuple(
        Series(name, f"Skill {name}", (Metric("m", name, "count", "sum"),), {"m": [1] * 7}) for name in NAMES
    )
    return ReportData(uuid.uuid4(), "personal", uuid.uuid4(), org, uuid.uuid4(), person, "learner", START, END,
                      "UTC", datetime(2026, 3, 8, 9, 0, tzinfo=UTC), (*series, *extra))


def _pdf_text(body: bytes) -> tuple[str, pypdf.PdfReader]:
    reader = pypdf.PdfReader(io.BytesIO(body))
    return "\n".join(p.extract_text() for p in reader.pages), reader


def test_fallback_chain_picks_a_font_with_the_glyph() -> None:
    assert fonts.font_for("Ł") == fonts.font_for("Ж") == fonts.font_for("λ") == fonts.REGULAR
    assert fonts.font_for("李") == fonts.font_for("김") == fonts.font_for("さ") == fonts.CJK
    assert fonts.font_for("A", bold=True) == fonts.BOLD
    assert fonts.font_for("Ł", bold=True) == fonts.REGULAR  # not in WinAnsi: the embedded font
    assert list(fonts.runs("Ann 李小龍 Lee")) == [(fonts.REGULAR, "Ann "), (fonts.CJK, "李小龍"),
                                                 (fonts.REGULAR, " Lee")]
    assert fonts.markup("a<b 李") == 'a&lt;b <font name="WenQuanYiMicroHei">李</font>'
    assert not fonts.needs_fallback("Gülşen Жанна") and fonts.needs_fallback("李")


def test_pdf_embeds_its_fonts_and_the_names_come_back_out() -> None:
    body = render(_data(), "pdf")
    text, reader = _pdf_text(body)
    for expected in (ORG, PERSON, f"{PERSON} (Learner)", *NAMES):
        assert expected in text, expected
    embedded = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor")
            if descriptor is not None and "/FontFile2" in descriptor.get_object():
                embedded.add(str(font["/BaseFont"]).split("+")[-1])
    assert {e.split("-")[0] for e in embedded} == {"NotoSans", "WenQuanYiMicroHei"}
    assert len(body) < 400_000  # subsets of the fonts, not the 7 MB of the files


def test_every_glyph_drawn_exists_in_its_font() -> None:
    for name in [ORG, PERSON, *NAMES]:
        for font, part in fonts.runs(name):
            face = fonts._registered(font).face
            missing = [ch for ch in part if not ch.isspace() and ord(ch) not in face.charWidths]
            assert not missing, (name, font, missing)


@pytest.mark.parametrize("fmt", ["csv", "json", "excel"])
def test_other_formats_keep_the_names(fmt: str) -> None:
    data = _data()
    body = render(data, fmt)
    if fmt == "csv":
        assert body.startswith(b"\xef\xbb\xbf")  # a byte-order mark: spreadsheets then read UTF-8
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert rows[0][0] == "date" and {r[1] for r in rows[1:]} >= set(NAMES)
    elif fmt == "json":
        doc = json.loads(body)
        assert doc["organization"]["name"] == ORG and doc["person"]["name"] == PERSON
        assert [s["analyticsType"] for s in doc["series"]][2:] == NAMES
    else:
        wb = openpyxl.load_workbook(io.BytesIO(body))
        values = {c.value for row in wb["Report"].iter_rows() for c in row}
        assert {ORG, PERSON} <= values


def test_a_year_with_fallback_text_in_every_table() -> None:
    start, end = date(2025, 1, 1), date(2025, 12, 31)
    data = dataclasses.replace(_data(), period_start=start, period_end=end, series=tuple(
        Series(name, name, (Metric("m", name, "count", "sum"),), {"m": [1] * len(period_days(start, end))})
        for name in NAMES[:3]
    ))
    text, _ = _pdf_text(render(data, "pdf"))
    assert all(n in text for n in NAMES[:3]) and "December 2025" in text
