"""Report files: the data (`model`, `series`) and one renderer per format, all pure (no database,
no S3). openpyxl and reportlab are imported only by the renderer that needs them, and that
renderer only when its format is asked for."""

from __future__ import annotations

from ms8.renderers.document import ReportData, ReportFormat


def render(data: ReportData, fmt: ReportFormat) -> bytes:
    """The file's bytes in `fmt`."""
    if fmt == "csv":
        from ms8.renderers import csv_format

        return csv_format.render(data)
    if fmt == "json":
        from ms8.renderers import json_format

        return json_format.render(data)
    if fmt == "excel":
        from ms8.renderers import excel_format

        return excel_format.render(data)
    if fmt == "pdf":
        from ms8.renderers import pdf_format

        return pdf_format.render(data)
    raise ValueError(f"unknown report format {fmt!r}")
