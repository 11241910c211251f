"""Peer comparison: own headline values beside the k-anonymous group, nothing about smaller groups."""

from __future__ import annotations

from typing import Any

import psycopg

from ms8.db import Caller
from ms8.domain.vocabulary import ANALYTICS_TYPES, HEADLINE_METRIC
from ms8.models.comparison import K_ANONYMITY, Comparison, ComparisonItem, PeerGroup
from ms8.repositories import analytics, comparison


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def compare(conn: psycopg.Connection, caller: Caller, analytics_type: str | None) -> Comparison:
    """The caller's value per type beside the peer group of their organization and active role."""
    assert caller.user_id is not None
    types = [analytics_type] if analytics_type else list(ANALYTICS_TYPES)
    snapshots = analytics.recent(conn, caller.user_id, caller.active_role, None, 10)
    own: dict[str, dict[str, Any]] = {a.analytics_type: a.data for a in snapshots}
    groups = comparison.peer_groups(conn, analytics_type)
    items = []
    for t in types:
        metric = HEADLINE_METRIC[t]
        mine = _number(own.get(t, {}).get(metric))
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
