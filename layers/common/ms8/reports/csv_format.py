"""CSV: UTF-8 with a byte-order mark (so spreadsheet programs read names in any script as
written rather than in a legacy code page), a header row, one row per day and analytics type.

Columns: `date`, `analytics_type`, then every metric of the report's series (a metric that does
not belong to a row's type is left empty). Numbers are written plainly (a dot for decimals, at
most six places). Any text cell that a spreadsheet could take for a formula (starting with =, +,
-, @, a tab or a carriage return) is neutralised with a leading apostrophe; numbers are written
by this module from floats, never from text, so they are left as numbers.
"""

from __future__ import annotations

import csv
import io

from ms8.reports.model import ReportData, Value

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


def render(data: ReportData) -> bytes:
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
