"""Peer comparison: the caller's value beside a k-anonymous group (k >= 10)."""

from __future__ import annotations

from datetime import datetime

from ms8.domain.vocabulary import PEER_K
from ms8.schemas.base import AnalyticsType, ApiModel

K_ANONYMITY = PEER_K


class PeerGroup(ApiModel):
    user_count: int
    average: float
    p25: float
    p50: float
    p75: float
    refreshed_at: datetime


class ComparisonItem(ApiModel):
    """`peers` is present only when the group has at least 10 distinct users."""

    analytics_type: AnalyticsType
    metric: str
    your_value: float | None
    available: bool
    peers: PeerGroup | None = None
    message: str | None = None


class Comparison(ApiModel):
    role: str
    minimum_group_size: int = K_ANONYMITY
    items: list[ComparisonItem]
