"""PDF (reportlab): A4 portrait, made to be read on paper.

Page one opens with the title block (organization, person and role, period, time zone,
generated at, report id), then, for a personal report, the person's latest values beside their
peers, and a summary of the period. Each analytics type follows: a line chart of each of its
metrics over the period (a shaded band where the series has one, e.g. the middle half of an
organization's learners), then a table by day, week or month depending on the period's length
(the CSV, Excel and JSON files keep every day). Dark lines on white with grey grids, text at 7 pt
or more, so it prints well in black and white. Every page has a footer with "page n of m".
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import date
from typing import Any

from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ms8.renderers import fonts
from ms8.renderers.document import (
    Granularity,
    Metric,
    MetricKind,
    ReportData,
    Series,
    Value,
    buckets,
    fold,
    format_value,
    summarize,
    table_granularity,
)
from ms8.renderers.document import Table as DataTable

PAGE_W, PAGE_H = A4
MARGIN = 16 * mm
FRAME_W = PAGE_W - 2 * MARGIN
INK = colors.HexColor("#1a1a1a")
LINE = colors.HexColor("#1f4e8c")  # dark blue: reads as near-black when printed in grey
GRID = colors.HexColor("#c8c8c8")
BAND = colors.HexColor("#d6dde8")
MUTED = colors.HexColor("#555555")
RULE = colors.HexColor("#888888")
HEAD_BG = colors.HexColor("#e6e6e6")

BODY_FONT = fonts.regular()  # embedded (subset) so every script renders; see ms8.renderers.fonts
_BASE = ParagraphStyle("base", fontName=BODY_FONT, fontSize=9, leading=11.5, textColor=INK)
STYLES = {
    "title": ParagraphStyle("title", parent=_BASE, fontName=fonts.BOLD, fontSize=19, leading=23),
    "subtitle": ParagraphStyle("subtitle", parent=_BASE, fontSize=10.5, leading=13, textColor=MUTED),
    "h2": ParagraphStyle("h2", parent=_BASE, fontName=fonts.BOLD, fontSize=13, leading=16,
                         spaceBefore=10, spaceAfter=3),
    "h3": ParagraphStyle("h3", parent=_BASE, fontName=fonts.BOLD, fontSize=10, leading=13,
                         spaceBefore=6, spaceAfter=3),
    "body": _BASE,
    "note": ParagraphStyle("note", parent=_BASE, fontSize=8, leading=10, textColor=MUTED),
    "cell": ParagraphStyle("cell", parent=_BASE, fontSize=8, leading=10),
    "cell_head": ParagraphStyle("cell_head", parent=_BASE, fontName=fonts.BOLD, fontSize=7.5, leading=9),
    "num_head": ParagraphStyle("num_head", parent=_BASE, fontName=fonts.BOLD, fontSize=7.5, leading=9,
                               alignment=TA_RIGHT),
}
HEADLINE_KIND: dict[str, MetricKind] = {
    "learning_velocity": "number", "engagement": "ratio", "mastery": "ratio", "skill_gap": "ratio",
}


def _p(text: str, style: str = "body") -> Paragraph:
    """A paragraph of plain text (escaped: names never become markup), each character in a font
    that has it."""
    st = STYLES[style]
    return Paragraph(fonts.markup(text, bold=st.fontName == fonts.BOLD), st)


def _cell(text: str) -> str | Paragraph:
    """A table cell of data (a name, a skill): plain when the body font has every character,
    else a paragraph that switches fonts where needed."""
    return _p(text, "cell") if fonts.needs_fallback(text) else text


# --- charts ---

def nice_ticks(low: float, high: float, count: int = 4, integer: bool = False) -> list[float]:
    """Round axis ticks covering [low, high] in about `count` steps of 1, 2, 2.5 or 5 x 10^k."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    return [first + i * step for i in range(round((last - first) / step) + 1)]


def _x_ticks(days: Sequence[date]) -> list[tuple[int, str]]:
    """(day index, label): every day for short periods, Mondays up to two months, else months."""
    n = len(days)
    if n <= 62:
        every = 1 if n <= 10 else 7
        return [(i, f"{d.day} {d:%b}") for i, d in enumerate(days) if every == 1 or d.weekday() == 0]
    ticks = []
    for i, d in enumerate(days):
        if d.day == 1 or (i == 0 and d.day <= 20):  # a first tick too close to the next month is left out
            ticks.append((i, str(d.year) if d.month == 1 else f"{d:%b}"))
    return ticks


def _segments(values: Sequence[Value]) -> list[list[tuple[int, float]]]:
    """Runs of consecutive days that have a value (a gap in the data is a gap in the line)."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for i, v in enumerate(values):
        if v is None:
            if current:
                runs.append(current)
                current = []
        else:
            current.append((i, float(v)))
    if current:
        runs.append(current)
    return runs


def _tick_label(kind: MetricKind, value: float, step: float) -> str:
    if kind == "ratio":
        return f"{value * 100:.0f}%"
    decimals = next((k for k in range(3) if abs(step * 10**k - round(step * 10**k)) < 1e-9), 3)
    return f"{value:,.{decimals}f}"


def chart(
    days: Sequence[date], values: Sequence[Value], metric: Metric, width: float, height: float, *,
    title: str | None = None, band: tuple[Sequence[Value], Sequence[Value]] | None = None,
    bars: Sequence[tuple[int, int, float]] | None = None,
) -> Drawing:
    """One metric over the period: a line of daily values (a gap where a day has none, the
    optional band shaded behind), or `bars` of (first day index, stop index, total)."""
    d = Drawing(width, height)
    label = title or metric.label
    d.add(String(0, height - 9, label, fontName=fonts.single_font(label, bold=True), fontSize=7.5, fillColor=INK))
    left, right, bottom, top = 34.0, width - 6.0, 16.0, height - 16.0
    present = [b[2] for b in bars] if bars is not None else [float(v) for v in values if v is not None]
    if band:
        present += [float(v) for col in band for v in col if v is not None]
    if not present or (bars is not None and not any(present)):
        d.add(Line(left, bottom, right, bottom, strokeColor=GRID, strokeWidth=0.5))
        d.add(String((left + right) / 2, (bottom + top) / 2, "No data in this period", fontName=BODY_FONT,
                     fontSize=8, fillColor=MUTED, textAnchor="middle"))
        return d
    low, high = min(0.0, min(present)), max(present)
    if metric.kind == "ratio" and high <= 1:
        high = 1.0
    ticks = nice_ticks(low, high, 4, integer=metric.kind == "count")
    y_min, y_max = ticks[0], ticks[-1]
    step = ticks[1] - ticks[0]
    n = len(days)

    def x(position: float) -> float:  # position in days from the start of the period
        return left + (right - left) * position / n

    def y(v: float) -> float:
        return bottom + (top - bottom) * (v - y_min) / (y_max - y_min)

    for t in ticks:
        d.add(Line(left, y(t), right, y(t), strokeColor=GRID, strokeWidth=0.4))
        d.add(String(left - 3, y(t) - 2.3, _tick_label(metric.kind, t, step), fontName=BODY_FONT,
                     fontSize=6.5, fillColor=MUTED, textAnchor="end"))
    for i, label in _x_ticks(days):
        d.add(Line(x(i), bottom, x(i), bottom - 2.5, strokeColor=RULE, strokeWidth=0.5))
        d.add(String(x(i), bottom - 9.5, label, fontName=BODY_FONT, fontSize=6.5, fillColor=MUTED,
                     textAnchor="start" if n > 62 else "middle"))
    if bars is not None:
        for first, stop, total in bars:
            if total:
                gap = min(1.0, 0.15 * (x(stop) - x(first)))
                d.add(Rect(x(first) + gap / 2, y(0), x(stop) - x(first) - gap, y(total) - y(0),
                           fillColor=LINE, strokeColor=None, strokeWidth=0))
    if band:
        lower, upper = band
        spans = [None if lo is None or up is None else 0.0 for lo, up in zip(lower, upper, strict=True)]
        for run in _segments(spans):
            idx = [i for i, _ in run]
            top_edge = [c for i in idx for c in (x(i + 0.5), y(float(upper[i])))]  # type: ignore[arg-type]
            bottom_edge = [c for i in reversed(idx) for c in (x(i + 0.5), y(float(lower[i])))]  # type: ignore[arg-type]
            d.add(Polygon(top_edge + bottom_edge, fillColor=BAND, strokeColor=None, strokeWidth=0))
    if bars is None:
        for run in _segments(values):
            if len(run) == 1:
                i, v = run[0]
                d.add(Circle(x(i + 0.5), y(v), 1.3, fillColor=LINE, strokeColor=None))
            else:
                d.add(PolyLine([c for i, v in run for c in (x(i + 0.5), y(v))], strokeColor=LINE,
                               strokeWidth=1.1, strokeLineJoin=1))
    d.add(Line(left, y(0) if y_min <= 0 <= y_max else bottom, right, y(0) if y_min <= 0 <= y_max else bottom,
               strokeColor=RULE, strokeWidth=0.6))
    return d


# --- tables ---

def _table(rows: list[list[Any]], widths: list[float] | None, numeric_from: int = 1, zebra: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("FONT", (0, 0), (-1, -1), BODY_FONT, 8),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, RULE),
        ("LINEBELOW", (0, -1), (-1, -1), 0.6, RULE),
        ("ALIGN", (numeric_from, 1), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.2),
    ]
    if zebra:
        style += [("BACKGROUND", (0, r), (-1, r), colors.HexColor("#f4f4f4")) for r in range(2, len(rows), 2)]
    table.setStyle(TableStyle(style))
    return table


def _title_block(data: ReportData) -> list[Any]:
    days = len(data.days)
    values = "daily values, time zone" if data.series else "UTC days; metrics as of generation,"
    period = (f"{data.period_start:%d %B %Y} \u2013 {data.period_end:%d %B %Y}  "
              f"({days} day{'s' if days != 1 else ''}, {values} {data.timezone})")
    generated = data.generated_at.strftime("%d %B %Y, %H:%M %Z").strip()
    rows = [
        ("Organization", data.organization_name),
        ("Person", f"{data.user_name} ({data.role_title})"),
        *([("About", data.subject)] if data.subject else []),
        ("Period", period),
        *([("Analytics", ", ".join(s.title for s in data.series))] if data.series else []),
        ("Generated", generated),
        ("Report ID", str(data.report_id)),
    ]
    block = Table(
        [[_p(k, "cell_head"), _p(v, "cell")] for k, v in rows], colWidths=[28 * mm, FRAME_W - 28 * mm],
        hAlign="LEFT",
    )
    block.setStyle(TableStyle([
        ("LINEABOVE", (0, 0), (-1, 0), 1.2, INK),
        ("LINEBELOW", (0, -1), (-1, -1), 1.2, INK),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]))
    return [
        _p("MS8 Learning Analytics", "subtitle"),
        _p(data.title, "title"),
        Spacer(1, 5),
        block,
    ]


def _comparison(data: ReportData) -> list[Any]:
    if not data.comparison:
        return []
    snapshots = {s.analytics_type: s for s in data.snapshots}
    rows: list[list[Any]] = [[_p(h, "cell_head" if i < 2 else "num_head") for i, h in enumerate(
        ("Analytics", "Metric", "Your latest", "Peer average", "Peers' middle half", "Peers"))]]
    spans = []
    for c in data.comparison:
        kind = HEADLINE_KIND.get(c.analytics_type, "number")
        snapshot = snapshots.get(c.analytics_type)
        mine = format_value(kind, c.your_value)
        if snapshot is not None:
            mine += f"  ({snapshot.updated_at:%d %b %Y})"
        row: list[Any] = [c.analytics_type.replace("_", " ").capitalize(), c.metric, mine]
        if c.available:
            row += [format_value(kind, c.average),
                    f"{format_value(kind, c.p25)} \u2013 {format_value(kind, c.p75)}", str(c.user_count)]
        else:
            row += [_p("Fewer than 10 peers with recent values: not shown", "note"), "", ""]
            spans.append(("SPAN", (3, len(rows)), (5, len(rows))))
        rows.append(row)
    table = _table(rows, [30 * mm, 22 * mm, 38 * mm, 26 * mm, 34 * mm, FRAME_W - 150 * mm], numeric_from=2)
    table.setStyle(TableStyle(spans))
    return [
        _p("Your latest values beside your peers", "h2"),
        _p("Peers are the people of your organization in the same role. Their figures are shown only "
           "for groups of at least 10 people, so no one can be singled out.", "note"),
        Spacer(1, 3),
        table,
    ]


def _data_table(table: DataTable) -> list[Any]:
    """A cohort or organization table: text cells wrap (and switch fonts), numbers as printed."""
    if not table.rows:
        return [KeepTogether([_p(table.title, "h2"), _p(table.description, "note"), Spacer(1, 3),
                              _p("None.", "body")])]
    text_w = {"learner": 36 * mm, "trainer": 50 * mm, "email": 45 * mm, "reasons": 0.0, "at_risk": 0.0}
    fixed = {"date": 20 * mm, "datetime": 30 * mm}
    widths: list[float] = []
    for c in table.columns:
        widths.append(text_w.get(c.name, 30 * mm) if c.kind == "text" else fixed.get(c.kind, 15 * mm))
    flexible = [i for i, w in enumerate(widths) if not w]
    if not flexible:  # no free text column: the numbers share what is left of the line
        flexible = [i for i, c in enumerate(table.columns) if c.kind not in ("text", "date", "datetime")]
        for i in flexible:
            widths[i] = 0.0
    rest = max(FRAME_W - sum(widths), 15 * mm * len(flexible))
    for i in flexible:
        widths[i] = rest / len(flexible)
    if sum(widths) > FRAME_W:
        widths = [w * FRAME_W / sum(widths) for w in widths]
    head = [_p(c.label, "cell_head" if c.kind in ("text", "date", "datetime") else "num_head") for c in table.columns]
    rows: list[list[Any]] = [head]
    for r in table.rows:
        rows.append([_p(format_value(c.kind, v), "cell") if c.kind == "text" and v is not None
                     else format_value(c.kind, v) for c, v in zip(table.columns, r, strict=True)])
    grid = _table(rows, widths, numeric_from=len(table.columns))
    charts = _table_charts(table)
    numeric = [("ALIGN", (i, 1), (i, -1), "RIGHT") for i, c in enumerate(table.columns)
               if c.kind not in ("text", "date", "datetime")]
    grid.setStyle(TableStyle([*numeric, ("VALIGN", (0, 0), (-1, -1), "TOP"),
                              ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3)]))
    return [KeepTogether([_p(table.title, "h2"), _p(table.description, "note"), Spacer(1, 3), *charts]), grid]


def _table_charts(table: DataTable) -> list[Any]:
    """The table's chart columns over its first column (period starts), two per row."""
    if len(table.rows) < 2 or not table.charts:
        return []
    starts = [r[0] for r in table.rows if isinstance(r[0], date)]
    if len(starts) != len(table.rows):
        return []
    gap = 6 * mm
    width = (FRAME_W - gap) / 2
    drawings: list[Any] = []
    for name in table.charts:
        i, column = next((i, c) for i, c in enumerate(table.columns) if c.name == name)
        values: list[Value] = [v if isinstance(v, int | float) else None for v in (r[i] for r in table.rows)]
        kind: MetricKind = column.kind if column.kind in ("count", "ratio", "number") else "number"
        drawings.append(chart(starts, values, Metric(name, column.label, kind, "mean"), width, 110))
    if len(drawings) % 2:
        drawings.append(Spacer(width, 1))
    grid = Table([drawings[i:i + 2] for i in range(0, len(drawings), 2)], colWidths=[width + gap, width],
                 hAlign="LEFT")
    grid.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                              ("BOTTOMPADDING", (0, 0), (-1, -1), 4)]))
    return [grid]


def _summary(data: ReportData) -> list[Any]:
    if not data.series:
        return []
    rows: list[list[Any]] = [[_p(h, "cell_head" if i < 2 else "num_head") for i, h in enumerate(
        ("Analytics", "Metric", "Mean per day", "Lowest day", "Highest day", "Total", "Days with data"))]]
    for series in data.series:
        for m in series.metrics:
            if not m.chart:
                continue
            s = summarize(series.values[m.name])
            total = format_value(m.kind, fold(series.values[m.name], "sum")) if m.fold == "sum" else ""
            rows.append([_p(series.title, "cell"), _p(m.label, "cell"), format_value(m.kind, s.mean),
                         format_value(m.kind, s.low), format_value(m.kind, s.high), total, f"{s.days_with_data}"])
    return [
        _p("The period at a glance", "h2"),
        _table(rows, [28 * mm, 62 * mm, 18 * mm, 18 * mm, 18 * mm, 18 * mm, FRAME_W - 162 * mm], numeric_from=2),
    ]


def _series_section(data: ReportData, series: Series) -> list[Any]:
    """Heading, a chart per metric (two per row), then the table."""
    n = len(data.days)
    gap = 6 * mm
    width = (FRAME_W - gap) / 2
    bar_granularity: Granularity = "day" if n <= 31 else "week"
    drawings: list[Any] = []
    for m in (m for m in series.metrics if m.chart):
        values = series.values[m.name]
        if m.fold == "sum":  # counts and durations: totals per day or week, as bars
            bars = [(b.start, b.stop, fold(values[b.start:b.stop], "sum") or 0.0)
                    for b in buckets(data.days, bar_granularity)]
            drawings.append(chart(data.days, values, m, width, 118, bars=bars,
                                  title=f"{m.label} per {bar_granularity}"))
        else:
            band = (series.values[m.band[0]], series.values[m.band[1]]) if m.band else None
            drawings.append(chart(data.days, values, m, width, 118, band=band))
    if len(drawings) % 2:
        drawings.append(Spacer(width, 1))
    grid = Table([drawings[i:i + 2] for i in range(0, len(drawings), 2)], colWidths=[width + gap, width],
                 hAlign="LEFT")
    grid.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                              ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
    head = [_p(series.title, "h2"), _p(series.description, "note"), Spacer(1, 4)]
    if not series.has_data():
        return [KeepTogether([*head, _p("No data in this period.", "body")])]

    granularity = table_granularity(n)
    per = {"day": "Day", "week": "Week", "month": "Month"}[granularity]
    rows: list[list[Any]] = [[_p(per, "cell_head"), *(_p(m.label, "num_head") for m in series.metrics)]]
    for b in buckets(data.days, granularity):
        rows.append([b.label, *(format_value(m.kind, fold(series.values[m.name][b.start:b.stop], m.fold))
                                for m in series.metrics)])
    first_w = 38 * mm if granularity == "week" else 26 * mm
    other_w = (FRAME_W - first_w) / max(1, len(series.metrics))
    note = {
        "day": "One row per day.",
        "week": "One row per week (Monday to Sunday): counts and minutes are totals, other figures the mean "
                "of the days.",
        "month": "One row per month: counts and minutes are totals, other figures the mean of the days.",
    }[granularity]
    table = _table(rows, [first_w] + [other_w] * len(series.metrics))
    tail: list[Any] = [_p(note, "note"), Spacer(1, 2), table]
    if len(rows) <= 16:  # a short table stays on one page
        return [KeepTogether([*head, grid]), KeepTogether(tail)]
    return [KeepTogether([*head, grid]), *tail]


# --- document ---

class _NumberedCanvas(Canvas):  # type: ignore[misc]
    """Defers each page until the end, so the footer can say "page n of m"."""

    def __init__(self, *args: Any, footer: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self._footer = footer

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFillColor(MUTED)
            self.setStrokeColor(GRID)
            self.setLineWidth(0.5)
            self.line(MARGIN, 11 * mm, PAGE_W - MARGIN, 11 * mm)
            x = MARGIN
            for font, part in fonts.runs(self._footer):  # names in any script: font by font
                self.setFont(font, 7.5)
                self.drawString(x, 7.5 * mm, part)
                x += pdfmetrics.stringWidth(part, font, 7.5)
            self.setFont(BODY_FONT, 7.5)
            self.drawRightString(PAGE_W - MARGIN, 7.5 * mm, f"Page {number} of {total}")
            super().showPage()
        super().save()


def render(data: ReportData) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=14 * mm, bottomMargin=16 * mm,
        title=f"{data.title}: {data.period_start.isoformat()} to {data.period_end.isoformat()}",
        author="MS8 Learning Analytics", subject=f"{data.organization_name} \u2013 {data.user_name}",
        creator="MS8 Learning Analytics",
    )
    story: list[Any] = [*_title_block(data), *_comparison(data), *_summary(data)]
    for series in data.series:
        story += _series_section(data, series)
    for table in data.tables:
        story += _data_table(table)
    footer = f"{data.title} \u00b7 {data.organization_name} \u00b7 {data.user_name} \u00b7 " \
             f"{data.period_start.isoformat()} to {data.period_end.isoformat()}"
    if len(footer) > 110:
        footer = footer[:109] + "\u2026"

    def canvas(*args: Any, **kwargs: Any) -> _NumberedCanvas:
        return _NumberedCanvas(*args, footer=footer, **kwargs)

    doc.build(story, canvasmaker=canvas)
    return out.getvalue()
