"""Reports: what a client asks for, and the report metadata with its download link."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from ms8.renderers.document import MAX_PERIOD_DAYS, ReportFormat, ReportKind
from ms8.schemas.base import ANALYTICS_TYPES, AnalyticsType, ApiModel, Role

DEFAULT_PERIOD_DAYS = 30
# Days a report may cover: far from date.min and date.max, so a period, its default and the
# series' look-back before it (reports.series) stay real dates rather than an OverflowError.
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2999, 12, 31)
ReportStatus = Literal["pending", "ready", "failed", "expired"]


class ReportRequest(ApiModel):
    """A report to generate. The period is whole days, both ends included (at most 366); it
    defaults to the 30 days ending today (UTC), or to the 30 days from `from`; days fall between
    2000-01-01 and 2999-12-31. `types` defaults to all four (personal reports).

    `kind` defaults by the active role: `personal` for a learner (their own learning), `cohort` for
    a trainer (their assigned learners), `organization` for an org admin (population trends and
    every trainer cohort); an org admin names a cohort with `trainerId`."""

    format: ReportFormat = Field(description="pdf, csv, excel (.xlsx) or json")
    kind: ReportKind | None = Field(
        default=None, description="personal, cohort or organization; default by the active role")
    trainer_id: UUID | None = Field(
        default=None, alias="trainerId", description="The cohort's trainer (kind cohort, org admin)")
    start: date | None = Field(default=None, alias="from", description="First day (YYYY-MM-DD)")
    end: date | None = Field(default=None, alias="to", description="Last day, included (YYYY-MM-DD)")
    types: list[AnalyticsType] = Field(default_factory=lambda: list(ANALYTICS_TYPES), min_length=1, max_length=4)

    @model_validator(mode="after")
    def _period(self) -> ReportRequest:
        if len(set(self.types)) != len(self.types):
            raise ValueError("types must not repeat")
        if any(d is not None and not EARLIEST_DAY <= d <= LATEST_DAY for d in (self.start, self.end)):
            raise ValueError(f"'from' and 'to' must fall between {EARLIEST_DAY} and {LATEST_DAY}")
        if self.end is None:
            span = timedelta(days=DEFAULT_PERIOD_DAYS - 1)
            self.end = datetime.now(UTC).date() if self.start is None else self.start + span
        if self.start is None:
            self.start = self.end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        if self.start > self.end:
            raise ValueError("'from' must be on or before 'to'")
        if (self.end - self.start).days + 1 > MAX_PERIOD_DAYS:
            raise ValueError(f"a report covers at most {MAX_PERIOD_DAYS} days")
        return self

    @property
    def period(self) -> tuple[date, date]:
        assert self.start is not None and self.end is not None
        return self.start, self.end


class ReportPeriod(ApiModel):
    start: date = Field(alias="from")
    end: date = Field(alias="to")


class Download(ApiModel):
    """A presigned GET of the file: issued afresh on every read, recorded, short-lived."""

    url: str
    expires_at: datetime
    file_name: str
    content_type: str


class Report(ApiModel):
    """A report's metadata. `download` is present on a single report that is ready (GET
    /v1/reports/{reportId} and the answer to POST); lists carry none. `status` is `expired` once
    the file is past the retention (`retainedUntil`), whatever the row says."""

    id: UUID
    user_id: UUID
    organization_id: UUID
    role: Role
    kind: ReportKind
    trainer_id: UUID | None = Field(default=None, description="The cohort's trainer (kind cohort)")
    format: ReportFormat
    status: ReportStatus
    period: ReportPeriod
    types: list[AnalyticsType]
    size_bytes: int | None = None
    checksum_sha256: str | None = None
    error: str | None = None
    created_at: datetime
    retained_until: datetime
    download: Download | None = None


class ReportPage(ApiModel):
    """Newest first; pass `nextCursor` back as `cursor` for the next page (null: no more)."""

    items: list[Report]
    next_cursor: str | None = None
