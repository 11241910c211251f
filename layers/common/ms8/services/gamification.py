"""Gamification: awarding points for new events, refreshing the rows, and reading them back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

import psycopg

from ms8.db import UserCaller
from ms8.domain import gamification as rules
from ms8.domain.metrics import streak_window
from ms8.repositories import gamification as repo
from ms8.schemas.gamification import Badge, GamificationView, Leaderboard, LeaderboardEntry, StreakView
from ms8.services.analytics_refresh import Computed, zone


class StoredEvent(rules.Source, Protocol):
    """A newly stored event (ms8.repositories.events.NewEvent or InsertedEvent)."""

    @property
    def user_id(self) -> UUID: ...


def award_and_refresh(
    conn: psycopg.Connection,
    computed: Mapping[UUID, Computed],
    new_events: Sequence[StoredEvent],
    now: datetime,
    *,
    basis: rules.CapBasis,
) -> int:
    """Award the points the new events earn (idempotent per award key, within the hourly cap
    counted by `basis`: "occurred" for a platform service's events, "arrived" for a learner's
    own), then rewrite the gamification rows of the users in `computed`. Returns points awarded."""
    sources: dict[UUID, list[StoredEvent]] = {}
    completed: set[UUID] = set()
    for e in new_events:
        user_events = sources.get(e.user_id)
        if user_events is None:
            user_events = sources[e.user_id] = []
        user_events.append(e)
        if e.verb == "completed":
            completed.add(e.user_id)
    candidates = {u: rules.candidate_awards(s, computed[u].tz) for u, s in sources.items() if u in computed}
    user_ids = sorted(computed)
    ledger = repo.ledger(
        conn, user_ids, [(u, a.key) for u, awards in candidates.items() for a in awards],
        [(u, rules.cap_hour(a, basis, now)) for u, awards in candidates.items() for a in awards],
    )
    granted = [
        (u, computed[u].organization_id, grant)
        for u, awards in candidates.items()
        for grant in rules.apply_hourly_cap(
            awards, ledger.existing.get(u, set()), ledger.by_hour.get(u, {}), basis, now
        )
    ]
    written = repo.award(conn, granted, now)
    previous = repo.states(conn, user_ids)
    rows = []
    for u in user_ids:
        c = computed[u]
        window_start, today = streak_window(now, c.tz)
        rows.append((u, c.organization_id, rules.next_state(
            previous.get(u),
            points=ledger.total.get(u, 0) + written.get(u, 0),
            days=c.active_days,
            completed=u in completed or _completions(c) > 0,
            skill_mastery=c.data["mastery"]["skills"],
            today=today,
            window_start=window_start,
            now=now,
        )))
    repo.upsert_states(conn, rows)
    return sum(written.values())


def _completions(c: Computed) -> int:
    velocity = c.data["learning_velocity"]
    return int(velocity["completions"]) + int(velocity["previous_completions"])


def view(found: tuple[rules.State, datetime] | None, caller: UserCaller, now: datetime) -> GamificationView:
    """The caller's own learner gamification (their row, ms8.repositories.gamification.own_of),
    the streak as of today in their time zone."""
    state, updated_at = found if found else (rules.State(0, 1, [], rules.Streak()), None)
    today = now.astimezone(zone(caller.timezone)).date()
    streak = state.streak
    return GamificationView(
        points=state.points,
        level=state.level,
        next_level_at=rules.next_level_points(state.points),
        badges=[Badge(id=b["id"], name=rules.badge_name(b["id"]), earned_at=b.get("earned_at")) for b in state.badges],
        streak=StreakView(current=rules.streak_as_of(streak, today), longest=streak.longest,
                          last_active_date=streak.last_active, timezone=caller.timezone),
        updated_at=updated_at,
    )


def leaderboard(rows: Sequence[repo.BoardRow], limit: int) -> Leaderboard:
    """The organization's top `limit` learners and the caller's own place."""
    entries = [
        LeaderboardEntry(rank=r.rank, display_name=r.display_name, points=r.points, level=r.level, is_you=r.is_caller)
        for r in rows
    ]
    return Leaderboard(
        items=entries[:limit],
        you=next((e for e in entries if e.is_you), None),
        participants=rows[0].participants if rows else 0,
    )
