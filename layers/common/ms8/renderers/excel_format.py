"""Excel (.xlsx, openpyxl): a "Report" sheet (title block, snapshots, peer comparison, period
summary), then one sheet per analytics type: a frozen, filterable header row and one row per day,
with typed cells (dates as dates, counts as integers, ratios as numbers shown as percentages).
A cohort or organization report has one such sheet per table (learners, at risk, trends, cohorts).

Text from people (organization and person names) is always stored as text: openpyxl would store
a string starting with "=" as a formula, so such cells are forced to the string type and marked
with Excel's quote prefix.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ms8.renderers.document import MetricKind, ReportData, Series, Table, summarize

NUMBER_FORMATS: dict[MetricKind, str] = {"count": "#,##0", "ratio": "0.0%", "number": "#,##0.00"}
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDDDDD")
FORMULA_PREFIXES = ("=", "+", "-", "@")


def _naive_utc(moment: datetime) -> datetime:
    """openpyxl stores no time zone: datetimes are written as UTC wall time."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _text(ws: Worksheet, row: int, column: int, value: str, *, bold: bool = False) -> Cell:
    cell: Cell = ws.cell(row=row, column=column)
    cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell.data_type = "s"  # never a formula, whatever the text starts with
    if value.startswith(FORMULA_PREFIXES):
        cell.alignment = Alignment(horizontal="left")
        cell.quotePrefix = True
    if bold:
        cell.font = BOLD
    return cell


def _value(ws: Worksheet, row: int, column: int, value: Any, number_format: str | None = None) -> None:
    if isinstance(value, datetime):
        value = _naive_utc(value)
    cell = ws.cell(row=row, column=column, value=value)
    if number_format:
        cell.number_format = number_format


def _header(ws: Worksheet, row: int, labels: list[str]) -> None:
    for col, label in enumerate(labels, start=1):
        cell = _text(ws, row, col, label, bold=True)
        cell.fill = HEADER_FILL


def _report_sheet(ws: Worksheet, data: ReportData) -> None:
    ws.title = "Report"
    _text(ws, 1, 1, data.title, bold=True).font = Font(bold=True, size=14)
    rows: list[tuple[str, Any, str | None]] = [
        ("Organization", data.organization_name, None),
        ("Person", data.user_name, None),
        *([("About", data.subject, None)] if data.subject else []),
        ("Role", data.role_title, None),
        ("Period from", data.period_start, DATE_FORMAT),
        ("Period to", data.period_end, DATE_FORMAT),
        ("Days", len(data.days), "0"),
        ("Time zone", data.timezone, None),
        ("Generated (UTC)", data.generated_at, DATETIME_FORMAT),
        ("Report ID", str(data.report_id), None),
    ]
    r = 3
    for label, value, fmt in rows:
        _text(ws, r, 1, label, bold=True)
        if isinstance(value, str):
            _text(ws, r, 2, value)
        else:
            _value(ws, r, 2, value, fmt)
        r += 1

    if data.snapshots:
        r += 1
        _text(ws, r, 1, "Latest analytics", bold=True)
        _header(ws, r + 1, ["Analytics", "Metric", "Value", "Updated (UTC)"])
        r += 2
        for s in data.snapshots:
            _text(ws, r, 1, s.analytics_type)
            _text(ws, r, 2, s.metric)
            _value(ws, r, 3, s.value, "0.00")
            _value(ws, r, 4, s.updated_at, DATETIME_FORMAT)
            r += 1

    if data.comparison:
        r += 1
        _text(ws, r, 1, "Peer comparison (groups of at least 10 people)", bold=True)
        _header(ws, r + 1, ["Analytics", "Metric", "You", "Peer average", "25th percentile", "Median",
                            "75th percentile", "Peers", "Note"])
        r += 2
        for c in data.comparison:
            _text(ws, r, 1, c.analytics_type)
            _text(ws, r, 2, c.metric)
            for col, v in enumerate((c.your_value, c.average, c.p25, c.p50, c.p75), start=3):
                _value(ws, r, col, v, "0.00")
            _value(ws, r, 8, c.user_count, "0")
            if c.message:
                _text(ws, r, 9, c.message)
            r += 1

    if not data.series:
        _widths(ws)
        return
    r += 1
    _text(ws, r, 1, "Period summary", bold=True)
    _header(ws, r + 1, ["Analytics", "Metric", "Mean", "Lowest", "Highest", "Days with data"])
    r += 2
    for series in data.series:
        for m in series.metrics:
            if not m.chart:
                continue
            summary = summarize(series.values[m.name])
            _text(ws, r, 1, series.analytics_type)
            _text(ws, r, 2, m.label)
            for col, v in enumerate((summary.mean, summary.low, summary.high), start=3):
                _value(ws, r, col, v, NUMBER_FORMATS[m.kind])
            _value(ws, r, 6, summary.days_with_data, "0")
            r += 1
    _widths(ws)


def _widths(ws: Worksheet) -> None:
    for letter, width in zip("ABCDEFGHI", (26, 44, 14, 14, 16, 14, 16, 10, 60), strict=True):
        ws.column_dimensions[letter].width = width


CELL_FORMATS: dict[str, str] = {"date": DATE_FORMAT, "datetime": DATETIME_FORMAT, **dict(NUMBER_FORMATS.items())}


def _table_sheet(ws: Worksheet, table: Table) -> None:
    """A cohort or organization table: typed cells, text always as text, frozen header."""
    ws.title = table.title.split(" (")[0][:31]
    labels = [c.label for c in table.columns]
    _header(ws, 1, labels)
    for r, row in enumerate(table.rows, start=2):
        for col, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
            if isinstance(value, str):
                _text(ws, r, col, value)
            elif value is not None:
                _value(ws, r, col, value, CELL_FORMATS.get(column.kind))
    for col, column in enumerate(table.columns, start=1):
        width = 40 if column.name in ("reasons", "at_risk") else 26 if column.kind == "text" else 16
        ws.column_dimensions[get_column_letter(col)].width = max(width, min(len(column.label) + 2, 30))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(labels))}{len(table.rows) + 1}"


def _series_sheet(ws: Worksheet, data: ReportData, series: Series) -> None:
    ws.title = series.title[:31]
    labels = ["Date", *(m.label for m in series.metrics)]
    _header(ws, 1, labels)
    columns = [series.values[m.name] for m in series.metrics]
    for i, day in enumerate(data.days):
        ws.append([day, *(c[i] for c in columns)])
    last = len(data.days) + 1
    formats = [DATE_FORMAT, *(NUMBER_FORMATS[m.kind] for m in series.metrics)]
    for row in ws.iter_rows(min_row=2, max_row=last, max_col=len(formats)):
        for cell, fmt in zip(row, formats, strict=True):
            if cell.value is not None:  # an empty cell without a style is not written at all
                cell.number_format = fmt
    for col in range(1, len(formats) + 1):
        letter = get_column_letter(col)
        ws.column_dimensions[letter].width = 12 if col == 1 else min(max(len(labels[col - 1]) + 2, 12), 48)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(labels))}{last}"


def render(data: ReportData) -> bytes:
    wb = Workbook()
    _report_sheet(wb.active, data)
    for series in data.series:
        _series_sheet(wb.create_sheet(), data, series)
    for table in data.tables:
        _table_sheet(wb.create_sheet(), table)
    wb.properties.title = data.title
    wb.properties.creator = "MS8 Learning Analytics"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
