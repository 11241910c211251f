"""Gamification: own points, level, badges and streak; the organization leaderboard."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from ms8.schemas.base import ApiModel

DEFAULT_LEADERBOARD = 10
MAX_LEADERBOARD = 100


class Badge(ApiModel):
    id: str = Field(description="first_completion, streak_7, streak_30 or mastery:<skill>")
    name: str
    earned_at: datetime | None


class StreakView(ApiModel):
    """Consecutive active days in the user's time zone; alive while the last active day is today
    or yesterday."""

    current: int
    longest: int
    last_active_date: date | None
    timezone: str


class GamificationView(ApiModel):
    """The caller's own learner gamification (zeros before any activity)."""

    points: int
    level: int
    next_level_at: int | None = Field(description="Points where the next level starts; null at the top")
    badges: list[Badge]
    streak: StreakView
    updated_at: datetime | None


class LeaderboardEntry(ApiModel):
    """A place on the board: rank (equal points share a rank), display name, points, level."""

    rank: int
    display_name: str
    points: int
    level: int
    is_you: bool


class Leaderboard(ApiModel):
    """The organization's top learners by points, and the caller's own place (null when they
    have no points yet). Only the caller's organization; no user ids or e-mails of others."""

    items: list[LeaderboardEntry]
    you: LeaderboardEntry | None
    participants: int = Field(description="Learners of the organization with points")
