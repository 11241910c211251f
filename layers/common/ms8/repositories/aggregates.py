"""Population rollups (population_rollups) as RLS lets the caller see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import psycopg

from ms8.domain.rollups import RollupSums


@dataclass(frozen=True, slots=True)
class StoredRollup:
    trainer_id: UUID | None
    granularity: str
    period_start: date
    period_end: date
    sums: RollupSums
    distribution: dict[str, Any]
    capped: dict[str, Any]


def rollups(
    conn: psycopg.Connection, organization_id: UUID, trainer_id: UUID | None, granularity: str,
    start: date, end: date,
) -> list[StoredRollup]:
    """The organization's (trainer_id None) or a cohort's rows whose period starts in
    [start, end], oldest first."""
    rows = conn.execute(
        "SELECT trainer_id, granularity, period_start, period_end, learners, active_learners, completions, "
        "assessments, scored, score_micros, duration_seconds, distribution, capped FROM population_rollups "
        "WHERE organization_id = %s AND trainer_id IS NOT DISTINCT FROM %s AND granularity = %s "
        "AND period_start BETWEEN %s AND %s ORDER BY period_start",
        (organization_id, trainer_id, granularity, start, end),
    ).fetchall()
    return [
        StoredRollup(r[0], r[1], r[2], r[3],
                     RollupSums((r[3] - r[2]).days, r[4], r[5], r[6], r[7], r[8], r[9], r[10]), r[11], r[12])
        for r in rows
    ]


def release_seeds(conn: psycopg.Connection, keys: list[str]) -> list[bytes]:
    """One secret-keyed seed per key (app.release_seeds, migration 0009)."""
    row = conn.execute("SELECT app.release_seeds(%s)", (keys,)).fetchone()
    assert row is not None
    return [bytes(b) for b in row[0]]
