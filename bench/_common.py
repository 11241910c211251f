"""Shared by bench_upsert.py and bench_context.py: import paths, the local database, percentiles,
the printed table."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

from local import localdb

ROOT = Path(__file__).resolve().parent.parent


def migrated_database(name: str, fresh: bool = False) -> None:
    """Start the local PostgreSQL, create `name` (again, when `fresh`) if needed and bring it to
    the head revision; DATABASE_URL and OWNER_DATABASE_URL then point at it."""
    if not localdb.is_running():  # start() re-owns the whole data directory when run as root
        localdb.start()
    if fresh:
        localdb.drop_database(name)
    localdb.bootstrap(name)
    localdb.migrate(name)
    localdb.set_runtime_password()
    os.environ["DATABASE_URL"] = localdb.runtime_url(name)
    os.environ["OWNER_DATABASE_URL"] = localdb.owner_url(name)
    from ms8 import config

    config.settings.cache_clear()


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def median_p95(values: Sequence[float]) -> tuple[float, float]:
    return statistics.median(values), percentile(values, 95)


def table(rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: the first row is the header, the first column left-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
