"""Organization history: daily, weekly and monthly rollups."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from ms8.models.base import AnalyticsType, ApiModel, Role

Granularity = Literal["daily", "weekly", "monthly"]


class Aggregate(ApiModel):
    granularity: Granularity
    role: Role
    analytics_type: AnalyticsType
    period_start: date
    period_end: date
    user_count: int
    data: dict[str, Any]


class AggregateList(ApiModel):
    items: list[Aggregate]
