"""Points ledger, gamification rows (role learner) and the organization leaderboard."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, LiteralString, NamedTuple
from uuid import UUID

import psycopg

from ms8.domain.gamification import Grant, State, Streak

ROLE = "learner"


@dataclass(slots=True)
class LedgerView:
    """What awarding needs from the ledger of some users."""

    existing: dict[UUID, set[str]] = field(default_factory=dict)  # candidate keys already awarded
    total: dict[UUID, int] = field(default_factory=dict)  # every point ever awarded
    by_hour: dict[UUID, dict[datetime, int]] = field(default_factory=dict)  # points per asked cap hour


# One statement, three parts, all through indexes: every point of each user; which candidate
# keys are taken (the primary key (user_id, award_key); the pairs may include a key another user
# of the batch asked about: harmless, only a user's own candidates are looked up in their set);
# the points already counted against each (user, cap hour) asked about.
_LEDGER = """
SELECT l.user_id, 't', NULL::text, NULL::timestamptz, sum(l.points)::integer
FROM points_ledger l WHERE l.user_id = ANY (%(users)s) GROUP BY l.user_id
UNION ALL
SELECT l.user_id, 'k', l.award_key, NULL, NULL
FROM points_ledger l WHERE l.user_id = ANY (%(users)s) AND l.award_key = ANY (%(keys)s)
UNION ALL
SELECT l.user_id, 'h', NULL, l.cap_hour, sum(l.points)::integer
FROM points_ledger l
JOIN unnest(%(hour_users)s::uuid[], %(hours)s::timestamptz[]) AS c(user_id, cap_hour)
  ON l.user_id = c.user_id AND l.cap_hour = c.cap_hour
GROUP BY l.user_id, l.cap_hour
"""


def ledger(
    conn: psycopg.Connection,
    user_ids: Sequence[UUID],
    candidates: Sequence[tuple[UUID, str]],
    hours: Sequence[tuple[UUID, datetime]],
) -> LedgerView:
    """Per user: which of the candidate keys are taken, total points, and the points counted
    against each of the (user, cap hour) pairs in `hours`."""
    view = LedgerView()
    if not user_ids:
        return view
    pairs = sorted(set(hours))
    rows = conn.execute(_LEDGER, {
        "users": list(user_ids), "keys": sorted({c[1] for c in candidates}),
        "hour_users": [p[0] for p in pairs], "hours": [p[1] for p in pairs],
    }).fetchall()
    for user_id, part, key, hour, points in rows:
        if part == "t":
            view.total[user_id] = points or 0
        elif part == "k":
            view.existing.setdefault(user_id, set()).add(key)
        else:
            view.by_hour.setdefault(user_id, {})[hour] = points or 0
    return view


_AWARD = """
INSERT INTO points_ledger (user_id, organization_id, award_key, event_id, points, occurred_at, awarded_at, cap_hour)
SELECT x.user_id, x.organization_id, x.award_key, x.event_id, x.points, x.occurred_at, %s, x.cap_hour
FROM unnest(%b::uuid[], %b::uuid[], %b::text[], %b::uuid[], %b::integer[], %b::timestamptz[], %b::timestamptz[])
     AS x(user_id, organization_id, award_key, event_id, points, occurred_at, cap_hour)
ORDER BY x.user_id, x.award_key
ON CONFLICT (user_id, award_key) DO NOTHING
RETURNING user_id, points
"""


def award(
    conn: psycopg.Connection, grants: Sequence[tuple[UUID, UUID, Grant]], awarded_at: datetime
) -> dict[UUID, int]:
    """Write the grants (user id, organization id, grant) in one statement; a key already taken
    is skipped. Returns the points actually written per user."""
    written: dict[UUID, int] = {}
    if not grants:
        return written
    rows = conn.execute(_AWARD, (
        awarded_at, [g[0] for g in grants], [g[1] for g in grants], [g[2].award.key for g in grants],
        [g[2].award.event_id for g in grants], [g[2].award.points for g in grants],
        [g[2].award.occurred_at for g in grants], [g[2].hour for g in grants],
    )).fetchall()
    for user_id, points in rows:
        written[user_id] = written.get(user_id, 0) + points
    return written


def _state(points: int, level: int, badges: Any, streaks: Any) -> State:
    return State(points, level, list(badges or []), Streak.from_json(streaks))


def states(conn: psycopg.Connection, user_ids: Sequence[UUID]) -> dict[UUID, State]:
    """The users' current rows (those RLS lets the caller see)."""
    if not user_ids:
        return {}
    rows = conn.execute(
        "SELECT user_id, points, level, badges, streaks FROM gamification WHERE user_id = ANY (%s) AND role = %s",
        (list(user_ids), ROLE),
    ).fetchall()
    return {r[0]: _state(*r[1:]) for r in rows}


_UPSERT = """
INSERT INTO gamification AS g (user_id, organization_id, role, points, level, badges, streaks)
SELECT x.user_id, x.organization_id, %s, x.points, x.level, x.badges, x.streaks
FROM jsonb_to_recordset(%s::jsonb) AS x(user_id uuid, organization_id uuid, points integer,
     level integer, badges jsonb, streaks jsonb)
ORDER BY x.user_id
ON CONFLICT (user_id, role) DO UPDATE
SET points = EXCLUDED.points, level = EXCLUDED.level, badges = EXCLUDED.badges, streaks = EXCLUDED.streaks
"""


def upsert_states(conn: psycopg.Connection, rows: Sequence[tuple[UUID, UUID, State]]) -> int:
    """Insert or replace the rows (user id, organization id, state) in one statement."""
    if not rows:
        return 0
    payload = json.dumps(
        [
            {"user_id": str(u), "organization_id": str(o), "points": s.points, "level": s.level,
             "badges": s.badges, "streaks": s.streak.as_json()}
            for u, o, s in rows
        ],
        separators=(",", ":"),
    )
    return conn.execute(_UPSERT, (ROLE, payload)).rowcount


# Calls of the request functions of migration 0016 for ms8.db.read_as_user.
READ_OWN: LiteralString = "app.request_gamification(%s, %s)"
READ_LEADERBOARD: LiteralString = "app.request_leaderboard(%s, %s, %s)"


def own_of(rows: Sequence[Sequence[Any]]) -> tuple[State, datetime] | None:
    """The caller's row and when it last changed, from READ_OWN's rows."""
    if not rows:
        return None
    row = rows[0]
    return _state(*row[:4]), row[4]


class BoardRow(NamedTuple):
    rank: int
    display_name: str
    points: int
    level: int
    is_caller: bool
    participants: int


def board_of(rows: Sequence[Sequence[Any]]) -> list[BoardRow]:
    """READ_LEADERBOARD's rows: the top `limit` of the caller's organization, then the caller's
    own row if not among them (app.leaderboard, migration 0005)."""
    return [BoardRow(*r) for r in rows]
