"""CSV: UTF-8 with a byte-order mark (so spreadsheet programs read names in any script as
written rather than in a legacy code page), a header row, one row per day and analytics type.

Columns: `date`, `analytics_type`, then every metric of the report's series (a metric that does
not belong to a row's type is left empty). A cohort or organization report has no daily series but
tables: its columns are `table` (learners, at_risk, trends, cohorts), then every table's columns.
Numbers are written plainly (a dot for decimals, at
most six places). Any text cell that a spreadsheet could take for a formula (starting with =, +,
-, @, a tab or a carriage return) is neutralised with a leading apostrophe; numbers are written
by this module from floats, never from text, so they are left as numbers.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from ms8.renderers.document import Cell, ReportData, Value

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    """Text that a spreadsheet will show as text, never evaluate."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def number(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def cell(value: Cell) -> str:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return number(value)


def render_tables(data: ReportData) -> bytes:
    """A cohort or organization report: one row per table row, `table` naming the table, then the
    union of the tables' columns (a column that is not the row's table's is left empty)."""
    columns: list[str] = []
    for t in data.tables:
        columns.extend(c.name for c in t.columns if c.name not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["table", *columns])
    for t in data.tables:
        index = {c.name: i for i, c in enumerate(t.columns)}
        for row in t.rows:
            writer.writerow([t.name, *(cell(row[index[c]]) if c in index else "" for c in columns)])
    return out.getvalue().encode("utf-8-sig")


def render(data: ReportData) -> bytes:
    if data.tables and not data.series:
        return render_tables(data)
    columns: list[str] = []
    for s in data.series:
        columns.extend(m.name for m in s.metrics if m.name not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_text(c) for c in ("date", "analytics_type", *columns)])
    days = [d.isoformat() for d in data.days]
    for i, day in enumerate(days):
        for s in data.series:
            row = [day, safe_text(s.analytics_type)]
            row.extend(number(s.values[c][i]) if c in s.values else "" for c in columns)
            writer.writerow(row)
    return out.getvalue().encode("utf-8-sig")
