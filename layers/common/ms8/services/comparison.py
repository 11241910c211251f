"""Peer comparison: own headline values beside the k-anonymous group, nothing about smaller groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ms8.db import Caller
from ms8.domain.vocabulary import ANALYTICS_TYPES, HEADLINE_METRIC
from ms8.models.comparison import K_ANONYMITY, Comparison, ComparisonItem, PeerGroup
from ms8.repositories import comparison


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build(caller: Caller, analytics_type: str | None, rows: Sequence[Sequence[Any]]) -> Comparison:
    """The caller's value per type beside the peer group of their organization and active role,
    from the rows of ms8.repositories.comparison.READ."""
    types = [analytics_type] if analytics_type else list(ANALYTICS_TYPES)
    own, groups = comparison.split(rows)
    items = []
    for t in types:
        metric = HEADLINE_METRIC[t]
        mine = _number((own.get(t) or {}).get(metric))
        group = groups.get(t)
        if group is None:
            items.append(ComparisonItem(
                analytics_type=t, metric=metric, your_value=mine, available=False,  # type: ignore[arg-type]
                message=f"Peer comparison needs at least {K_ANONYMITY} people with recent values; "
                        "there are not enough yet.",
            ))
        else:
            items.append(ComparisonItem(analytics_type=t, metric=metric, your_value=mine,  # type: ignore[arg-type]
                                        available=True, peers=PeerGroup(**group)))
    return Comparison(role=caller.active_role, items=items)


def compare(conn: psycopg.Connection, caller: Caller, analytics_type: str | None) -> Comparison:
    """build() inside an open request transaction (report data gathering)."""
    return build(caller, analytics_type, comparison.rows_in(conn, analytics_type))
