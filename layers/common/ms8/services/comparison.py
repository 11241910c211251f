"""Peer comparison: own headline values beside the released (noisy, k-anonymous) group, nothing
about smaller groups; and the release of the groups by the refresh job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from ms8.db import UserCaller
from ms8.domain.vocabulary import ANALYTICS_TYPES, HEADLINE_METRIC
from ms8.repositories import comparison
from ms8.schemas.comparison import K_ANONYMITY, Comparison, ComparisonItem, PeerGroup

if TYPE_CHECKING:  # the release side is the job's; GET /v1/comparison does not import it
    from ms8.domain.privacy import RandBelow


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build(caller: UserCaller, analytics_type: str | None, rows: Sequence[Sequence[Any]]) -> Comparison:
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


def compare(conn: psycopg.Connection, caller: UserCaller, analytics_type: str | None) -> Comparison:
    """build() inside an open request transaction (report data gathering)."""
    return build(caller, analytics_type, comparison.rows_in(conn, analytics_type))


@dataclass(slots=True)
class ReleaseRun:
    """What one release pass did, per group count, and the groups that had a problem."""

    groups: int = 0
    released: int = 0
    unchanged: int = 0
    budget_exhausted: int = 0
    below_k: int = 0
    dropped: int = 0
    failed: int = 0
    out_of_range: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)


def release_groups(conn: psycopg.Connection, now: datetime, randbelow: RandBelow | None = None) -> ReleaseRun:
    """Turn the refreshed comparison view into releases (owner connection, maintenance).

    Per group: below k, no release; state unchanged since the current release, the release stands
    (no fresh noise to average); otherwise a fresh noisy release if the group's budget allows (or
    someone left it: an erasure shows at the next refresh).
    A group whose statistics fail (whatever the reason) is skipped and reported; every other group
    is still released. Values out of their documented range were left out by the view; they are
    counted and reported here.
    """
    from ms8.domain import privacy

    draw = randbelow or privacy.system_randbelow
    run = ReleaseRun()
    current = comparison.release_digests(conn)
    spent = comparison.spent_since(conn, now - privacy.BUDGET_WINDOW)
    fresh: list[comparison.ReleaseRow] = []
    keep: list[comparison.GroupKey] = []
    for group in comparison.groups(conn):
        run.groups += 1
        if group.out_of_range:
            run.out_of_range += group.out_of_range
            run.problems.append({"group": _label(group.key), "outOfRange": group.out_of_range})
        if group.user_count < privacy.K_MIN_GROUP:
            run.below_k += 1
            continue
        keep.append(group.key)
        digest, count = current.get(group.key, (None, 0))
        if digest == group.digest:
            run.unchanged += 1
            continue
        if not privacy.may_release(spent.get(group.key, 0.0), member_left=group.user_count < count):
            run.budget_exhausted += 1
            continue
        try:
            stats = privacy.GroupStats(group.user_count, group.sum_units,
                                       privacy.dense_histogram(group.bins, group.counts), group.low, group.high)
            out = privacy.release(stats, draw)
        except (ValueError, IndexError, ArithmeticError) as exc:
            run.failed += 1
            run.problems.append({"group": _label(group.key), "error": str(exc)[:200]})
            continue
        fresh.append(comparison.ReleaseRow(group.key, group.digest, group.user_count, out.average, out.p25,
                                           out.p50, out.p75, out.epsilon))
    run.released = len(fresh)
    run.dropped = comparison.save_releases(conn, fresh, keep, now, now - privacy.BUDGET_WINDOW)
    return run


def _label(key: comparison.GroupKey) -> str:
    return f"{key[0]}/{key[1]}/{key[2]}"
