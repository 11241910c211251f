"""The report as data: what every format renders, with no database, S3 or rendering library.

A report covers a period of whole days (both ends included) at daily granularity. Each analytics
type is a `Series`: named metrics, each a column of values aligned with `ReportData.days`
(None where the day has no value). A personal report (learner, trainer) also carries the
person's latest snapshots and the peer comparison; an organization report (org admin) carries the
organization's daily aggregates only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from uuid import UUID

SCHEMA_VERSION = "1.1"  # of the JSON document; bump the major on any incompatible change
MAX_PERIOD_DAYS = 366

ReportFormat = Literal["pdf", "csv", "excel", "json"]
ReportKind = Literal["personal", "cohort", "organization"]
REPORT_KINDS: tuple[ReportKind, ...] = ("personal", "cohort", "organization")
MetricKind = Literal["count", "ratio", "number"]  # ratio: a share or score in 0..1
Fold = Literal["sum", "mean"]  # how the days of a longer period combine
Value = float | int | None
ColumnKind = Literal["text", "date", "datetime", "count", "ratio", "number"]
Cell = str | int | float | date | datetime | None

EXTENSIONS: dict[ReportFormat, str] = {"pdf": "pdf", "csv": "csv", "excel": "xlsx", "json": "json"}
CONTENT_TYPES: dict[ReportFormat, str] = {
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "excel": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
TYPE_TITLES: dict[str, str] = {
    "learning_velocity": "Learning velocity",
    "engagement": "Engagement",
    "mastery": "Mastery",
    "skill_gap": "Skill gap",
}
ROLE_TITLES: dict[str, str] = {"learner": "Learner", "trainer": "Trainer", "org_admin": "Organization admin"}


@dataclass(frozen=True, slots=True)
class Metric:
    """One column of a series. `band` names two metrics drawn as a shaded range behind it."""

    name: str
    label: str
    kind: MetricKind
    fold: Fold
    description: str = ""
    chart: bool = True
    band: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Series:
    """One analytics type over the period: `values[metric.name][i]` belongs to `days[i]`."""

    analytics_type: str
    description: str
    metrics: tuple[Metric, ...]
    values: dict[str, list[Value]]

    @property
    def title(self) -> str:
        return TYPE_TITLES.get(self.analytics_type, self.analytics_type)

    @property
    def headline(self) -> Metric:
        return self.metrics[0]

    def has_data(self) -> bool:
        return any(v is not None for m in self.metrics for v in self.values[m.name])


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The person's latest stored analytics of one type: its numeric metrics only."""

    analytics_type: str
    metric: str
    metrics: dict[str, float]
    updated_at: datetime

    @property
    def value(self) -> float | None:
        return self.metrics.get(self.metric)


@dataclass(frozen=True, slots=True)
class PeerComparison:
    """The person's headline value beside the peer group (figures only when k >= 10)."""

    analytics_type: str
    metric: str
    your_value: float | None
    available: bool
    user_count: int | None = None
    average: float | None = None
    p25: float | None = None
    p50: float | None = None
    p75: float | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    label: str
    kind: ColumnKind


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of a cohort or organization report (learners, trends, cohorts): one cell per column."""

    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    charts: tuple[str, ...] = ()  # columns drawn over the first (a date) column in the PDF

    def __post_init__(self) -> None:
        if any(len(r) != len(self.columns) for r in self.rows):
            raise ValueError(f"{self.name}: one cell per column is needed")


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything a report file shows."""

    report_id: UUID
    kind: ReportKind
    organization_id: UUID
    organization_name: str
    user_id: UUID
    user_name: str
    role: str
    period_start: date
    period_end: date  # included
    timezone: str
    generated_at: datetime
    series: tuple[Series, ...]
    snapshots: tuple[Snapshot, ...] = ()
    comparison: tuple[PeerComparison, ...] = ()
    tables: tuple[Table, ...] = ()
    subject: str = ""  # whom a cohort or organization report is about ("Cohort of ...")
    days: tuple[date, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", tuple(period_days(self.period_start, self.period_end)))
        for s in self.series:
            for m in s.metrics:
                if len(s.values[m.name]) != len(self.days):
                    raise ValueError(f"{s.analytics_type}.{m.name}: one value per day of the period is needed")

    @property
    def analytics_types(self) -> tuple[str, ...]:
        return tuple(s.analytics_type for s in self.series)

    @property
    def title(self) -> str:
        return {"organization": "Organization learning report", "cohort": "Cohort learning report"}.get(
            self.kind, "Personal learning report")

    @property
    def role_title(self) -> str:
        return ROLE_TITLES.get(self.role, self.role)


def period_days(start: date, end: date) -> list[date]:
    """Every day from `start` to `end`, both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def file_name(kind: ReportKind, start: date, end: date, fmt: ReportFormat) -> str:
    """The download name: ASCII only, so it needs no quoting rules in Content-Disposition."""
    return f"learning-report-{kind}-{start.isoformat()}-to-{end.isoformat()}.{EXTENSIONS[fmt]}"


def numbers(values: Sequence[Value]) -> list[float]:
    return [float(v) for v in values if v is not None]


def fold(values: Sequence[Value], how: Fold) -> Value:
    """Combine days into one figure: None when no day has a value."""
    present = numbers(values)
    if not present:
        return None
    total = math.fsum(present)
    return total if how == "sum" else total / len(present)


@dataclass(frozen=True, slots=True)
class Summary:
    mean: float | None
    low: float | None
    high: float | None
    days_with_data: int


def summarize(values: Sequence[Value]) -> Summary:
    present = numbers(values)
    if not present:
        return Summary(None, None, None, 0)
    return Summary(math.fsum(present) / len(present), min(present), max(present), len(present))


Granularity = Literal["day", "week", "month"]


def table_granularity(day_count: int) -> Granularity:
    """Rows of a printed table: days up to a month, weeks up to a quarter, months beyond."""
    if day_count <= 31:
        return "day"
    if day_count <= 92:
        return "week"
    return "month"


@dataclass(frozen=True, slots=True)
class Bucket:
    label: str
    start: int  # index into ReportData.days
    stop: int


def buckets(days: Sequence[date], granularity: Granularity) -> Iterator[Bucket]:
    """Consecutive runs of days that share a day, an ISO week (Monday first) or a month."""

    def key(d: date) -> tuple[int, ...]:
        if granularity == "day":
            return (d.toordinal(),)
        if granularity == "week":
            return (d.toordinal() - d.weekday(),)
        return (d.year, d.month)

    start = 0
    for i in range(1, len(days) + 1):
        if i == len(days) or key(days[i]) != key(days[start]):
            first, last = days[start], days[i - 1]
            if granularity == "day":
                label = first.isoformat()
            elif granularity == "week":
                label = f"{first.isoformat()} to {last.isoformat()}"
            else:
                label = first.strftime("%B %Y")
            yield Bucket(label, start, i)
            start = i


def format_value(kind: MetricKind | ColumnKind, value: Cell) -> str:
    """A value as printed: counts whole, ratios as percentages, other numbers to two places,
    dates as ISO dates, instants as UTC minutes."""
    if value is None:
        return "\u2013"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    if kind == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if kind == "ratio":
        return f"{value * 100:.0f}%"
    return f"{value:,.2f}"
