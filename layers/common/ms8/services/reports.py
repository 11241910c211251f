"""Reports: generated within POST /v1/reports, listed, and read with a fresh download link.

What a report holds (gathered in the caller's request transaction, so RLS decides; the kind by
role as ms8.domain.report_kinds decides):

- "organization" (org admin): the population rollups of the organization over the period (as
  GET /v1/aggregates), each trainer cohort's summary (as GET /v1/cohorts) and the learners at
  risk (as GET /v1/learners?atRisk=true);
- "cohort" (a trainer's own; an org admin's for any trainer): each assigned learner's row (as
  GET /v1/learners), the at-risk list, the cohort's rollups over the period;
- "personal" (anyone's own): their own latest analytics snapshots for the active role, the peer
  comparison (figures only for groups of k >= 10, through app.peer_comparison), and the history
  over the period computed from their own learning_events folded per day in their time zone
  (the analytics table keeps only the latest snapshot per type, so it has no history of its
  own; see ms8.renderers.series for the per-day definitions).

Generation is synchronous: insert the row as pending (with the key its file will have), gather,
render, upload (encrypted, with content type and download name), mark it ready with size and
SHA-256, issue a link. If S3 refuses the upload, whatever may have been stored is deleted, the
row is marked failed in the same transaction (which commits) and the caller gets 503 afterwards.
If the transaction does not commit after a successful upload, the file is deleted again: a
report is either a ready row with its file, a failed row without one, or nothing at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import psycopg
from aws_lambda_powertools import Logger

from ms8 import renderers, storage
from ms8.config import settings
from ms8.db import UserCaller
from ms8.domain.report_kinds import KindChoice, choose_kind
from ms8.errors import BadRequest, NotFound, Unavailable
from ms8.renderers import population as tables
from ms8.renderers.document import (
    CONTENT_TYPES,
    EXTENSIONS,
    REPORT_KINDS,
    PeerComparison,
    ReportData,
    ReportFormat,
    ReportKind,
    Snapshot,
    file_name,
)
from ms8.renderers.series import personal_series
from ms8.repositories import analytics
from ms8.repositories import learners as learners_repo
from ms8.repositories import reports as repo
from ms8.schemas.base import HEADLINE_METRIC
from ms8.schemas.reports import Download, Report, ReportPage, ReportRequest
from ms8.services import learners, population
from ms8.services.comparison import compare

logger = Logger(child=True)

MAX_SNAPSHOT_METRICS = 24


def retention_days() -> int:
    """How long report files are kept (REPORT_RETENTION_DAYS, as the bucket's lifecycle rule)."""
    return settings().report_retention_days


def object_key(organization_id: UUID, user_id: UUID, report_id: UUID, fmt: ReportFormat) -> str:
    return f"reports/{organization_id}/{user_id}/{report_id}.{EXTENSIONS[fmt]}"


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return "UTC"
    return name


# --- gathering ---

def _numeric_metrics(data: dict[str, Any]) -> dict[str, float]:
    """The numbers of a snapshot's data, nested objects one level deep as `outer.inner`."""
    out: dict[str, float] = {}
    for key, value in data.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for inner, v in items:
            if isinstance(v, int | float) and not isinstance(v, bool) and len(out) < MAX_SNAPSHOT_METRICS:
                out[(f"{key}.{inner}" if inner is not None else str(key))[:80]] = float(v)
    return out


def gather(
    conn: psycopg.Connection, caller: UserCaller, report_id: UUID, request: ReportRequest, generated_at: datetime,
    choice: KindChoice | None = None,
) -> ReportData:
    """Everything the report shows, read as the caller (RLS applies)."""
    choice = choice or choose_kind(caller.active_role, caller.user_id, request.kind, request.trainer_id)
    start, end = request.period
    types: list[str] = list(request.types)
    org_name, person = repo.names(conn, caller.user_id) or ("", "")
    kind = choice.kind
    common: dict[str, Any] = {
        "report_id": report_id, "kind": kind, "organization_id": caller.organization_id,
        "organization_name": org_name, "user_id": caller.user_id, "user_name": person,
        "role": caller.active_role, "period_start": start, "period_end": end, "generated_at": generated_at,
    }
    if kind != "personal":
        return ReportData(**common, timezone="UTC", series=(),
                          **_population(conn, caller.organization_id, choice, start, end, generated_at))

    tz = _time_zone(caller.timezone)
    days = repo.person_days(conn, caller.user_id, tz, start, end)
    skills, targets = [], {}
    latest_gap: float | None = None
    if "skill_gap" in types:
        skills = repo.person_skill_days(conn, caller.user_id, tz, start, end)
        targets = repo.skill_targets(conn, caller.organization_id)
        latest_gap = _latest_skill_gap(conn, caller, tz, targets, generated_at)
    snapshots = tuple(
        _with_latest_gap(Snapshot(a.analytics_type, HEADLINE_METRIC[a.analytics_type], _numeric_metrics(a.data),
                                  a.updated_at), latest_gap)
        for a in sorted(analytics.recent(conn, caller.user_id, caller.active_role, None, 10),
                        key=lambda a: types.index(a.analytics_type) if a.analytics_type in types else 99)
        if a.analytics_type in types
    )
    peers = []
    for item in compare(conn, caller, None).items:
        if item.analytics_type not in types:
            continue
        group = item.peers
        mine = latest_gap if item.analytics_type == "skill_gap" and targets else item.your_value
        peers.append(PeerComparison(
            item.analytics_type, item.metric, mine, item.available,
            group.user_count if group else None, group.average if group else None,
            group.p25 if group else None, group.p50 if group else None, group.p75 if group else None,
            item.message,
        ))
    peers.sort(key=lambda p: types.index(p.analytics_type))
    return ReportData(
        **common, timezone=tz, series=personal_series(types, start, end, days, skills, targets),
        snapshots=snapshots, comparison=tuple(peers),
    )


def _latest_skill_gap(
    conn: psycopg.Connection, caller: UserCaller, tz: str, targets: dict[str, float], now: datetime
) -> float | None:
    """The person's skill gap today, by the same definition and targets as the report's daily
    skill-gap table (one source for the first page and the table: the stored snapshot may predate
    the organization's current targets)."""
    today = now.astimezone(ZoneInfo(tz)).date()
    skills = repo.person_skill_days(conn, caller.user_id, tz, today, today)
    series = personal_series(["skill_gap"], today, today, [], skills, targets)
    value = series[0].values[series[0].headline.name][0] if series else None
    return None if value is None else float(value)


def _with_latest_gap(snapshot: Snapshot, latest_gap: float | None) -> Snapshot:
    if snapshot.analytics_type != "skill_gap" or latest_gap is None:
        return snapshot
    return Snapshot(snapshot.analytics_type, snapshot.metric, {**snapshot.metrics, snapshot.metric: latest_gap},
                    snapshot.updated_at)


def _population(
    conn: psycopg.Connection, organization_id: UUID, choice: KindChoice, start: date, end: date, now: datetime
) -> dict[str, Any]:
    """The tables of a cohort or organization report, by the same services as the API."""
    granularity = tables.rollup_granularity((end - start).days + 1)
    if choice.kind == "cohort":
        trainer_id = choice.trainer_id
        assert trainer_id is not None
        if not learners_repo.is_trainer(conn, organization_id, trainer_id):
            raise NotFound("no such trainer")
        trainer = repo.names(conn, trainer_id)
        rows = learners.learner_rows(conn, organization_id, now, trainer_id=trainer_id)
        rollups = population.cohort_rollups(conn, organization_id, trainer_id, granularity, start, end)
        return {
            "subject": f"Cohort of {trainer[1] if trainer else trainer_id} ({len(rows)} learners)",
            "tables": (tables.learners_table(rows), tables.at_risk_table(rows),
                       tables.trends_table(rollups, granularity, "cohort's learners")),
        }
    rollups = population.organization_rollups(conn, organization_id, granularity, start, end)
    cohorts = learners.cohort_summaries(conn, organization_id, now)
    everyone = learners.learner_rows(conn, organization_id, now)  # the at-risk table keeps those at risk
    return {
        "subject": f"All learners of the organization ({len(everyone)})",
        "tables": (tables.trends_table(rollups, granularity, "organization's learners"),
                   tables.cohorts_table(cohorts.items, cohorts.unassigned_learners),
                   tables.at_risk_table(everyone)),
    }


# --- metadata and links ---

def _params(row: repo.ReportRow) -> tuple[ReportKind, date, date, list[Any]]:
    p = row.params
    kind: ReportKind = p["kind"] if p.get("kind") in REPORT_KINDS else "personal"
    return kind, date.fromisoformat(p["from"]), date.fromisoformat(p["to"]), list(p.get("types", []))


def to_api(row: repo.ReportRow, now: datetime | None = None) -> Report:
    kind, start, end, types = _params(row)
    trainer = row.params.get("trainerId")
    retained_until = row.created_at + timedelta(days=retention_days())
    status = row.status
    if status == "ready" and (now or datetime.now(UTC)) >= retained_until:
        status = "expired"
    return Report.model_validate({
        "id": row.id, "user_id": row.user_id, "organization_id": row.organization_id, "role": row.role,
        "kind": kind, "trainer_id": trainer, "format": row.format, "status": status,
        "period": {"from": start, "to": end},
        "types": types, "size_bytes": row.size_bytes, "checksum_sha256": row.checksum_sha256, "error": row.error,
        "created_at": row.created_at, "retained_until": retained_until,
    })


def issue_link(conn: psycopg.Connection, caller: UserCaller, row: repo.ReportRow) -> Download:
    """A fresh presigned GET of the row's file, recorded in report_links (who, when, until)."""
    assert row.s3_key is not None  # a ready report has its file
    ttl = settings().report_link_ttl_s
    issued_at = datetime.now(UTC)
    expires_at = issued_at + timedelta(seconds=ttl)
    url = storage.presign_get(row.s3_key, ttl)
    repo.record_link(conn, row.id, row.organization_id, caller.user_id, issued_at, expires_at)
    kind, start, end, _ = _params(row)
    fmt: ReportFormat = row.format  # type: ignore[assignment]
    return Download(url=url, expires_at=expires_at, file_name=file_name(kind, start, end, fmt),
                    content_type=CONTENT_TYPES[fmt])


def get_report(conn: psycopg.Connection, caller: UserCaller, report_id: UUID) -> Report:
    """The report with a fresh link when it is ready; 404 when it does not exist or RLS hides it."""
    row = repo.get(conn, report_id)
    if row is None:
        raise NotFound("no such report")
    report = to_api(row)
    if report.status == "ready":
        report.download = issue_link(conn, caller, row)
    return report


def _encode_cursor(row: repo.ReportRow) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, rid = raw.partition("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        return moment, UUID(rid)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadRequest("the cursor is not valid: pass back a nextCursor as it was", code="INVALID_CURSOR") from None


def list_reports(conn: psycopg.Connection, caller: UserCaller, limit: int, cursor: str | None) -> ReportPage:
    """Own reports (an org admin: the organization's), newest first, one page."""
    after = _decode_cursor(cursor) if cursor else None
    rows = repo.page(
        conn, user_id=None if caller.active_role == "org_admin" else caller.user_id,
        organization_id=caller.organization_id, after=after, limit=limit + 1,
    )
    now = datetime.now(UTC)
    more = len(rows) > limit
    rows = rows[:limit]
    return ReportPage(items=[to_api(r, now) for r in rows], next_cursor=_encode_cursor(rows[-1]) if more else None)


# --- generation ---

def _discard(key: str) -> bool:
    """Delete a file that must not exist; False (and a log line) when S3 refuses."""
    try:
        storage.delete_object(key)
    except Exception:
        logger.exception("could not delete a report file", extra={"s3_key": key})
        return False
    return True


class ReportCreation:
    """POST /v1/reports around the request transaction:

        with ReportCreation(request) as creation:
            with user_tx(app, database=db.reader()) as (conn, caller):
                creation.gather(conn, caller)      # optional: on the replica
            with user_tx(app) as (conn, caller):
                creation.run(conn, caller)
        return creation.result()

    `run` leaves the row ready (file stored) or failed (S3 refused: nothing stored); either
    commits. Should the transaction fail after the upload, leaving the block deletes the file.
    `result` answers the report, or raises 503 for a failed one (its row committed by then).
    """

    def __init__(self, request: ReportRequest) -> None:
        self.request = request
        self.report_id = uuid4()
        self.data: ReportData | None = None
        self.report: Report | None = None
        self._uploaded: str | None = None
        self._failed = False

    def __enter__(self) -> ReportCreation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None and self._uploaded is not None:
            _discard(self._uploaded)

    def gather(self, conn: psycopg.Connection, caller: UserCaller) -> None:
        """Read what the report shows as the caller (a transaction of its own, e.g. on the
        replica); run() gathers in its own transaction when this was not called."""
        choice = choose_kind(caller.active_role, caller.user_id, self.request.kind, self.request.trainer_id)
        self.data = gather(conn, caller, self.report_id, self.request, datetime.now(UTC), choice)

    def run(self, conn: psycopg.Connection, caller: UserCaller) -> None:
        fmt = self.request.format
        report_id = self.report_id
        key = object_key(caller.organization_id, caller.user_id, report_id, fmt)
        start, end = self.request.period
        choice = choose_kind(caller.active_role, caller.user_id, self.request.kind, self.request.trainer_id)
        kind = choice.kind
        params: dict[str, Any] = {"kind": kind, "from": start.isoformat(), "to": end.isoformat(),
                                  "types": list(self.request.types)}
        if choice.trainer_id is not None:
            params["trainerId"] = str(choice.trainer_id)
        repo.insert_pending(conn, report_id, caller.user_id, caller.organization_id, caller.active_role, fmt,
                            params, key)
        data = self.data or gather(conn, caller, report_id, self.request, datetime.now(UTC), choice)
        body = renderers.render(data, fmt)
        digest = hashlib.sha256(body)
        try:
            storage.put_report(
                key, body, content_type=CONTENT_TYPES[fmt], file_name=file_name(kind, start, end, fmt),
                sha256_b64=base64.b64encode(digest.digest()).decode(),
            )
        except storage.StorageError as exc:
            logger.warning("report upload failed", extra={"report_id": str(report_id), "reason": str(exc)})
            left = None if _discard(key) else key  # a key is kept only while a file may exist
            row = repo.mark_failed(conn, report_id, f"the file could not be stored: {exc}", left)
            self.report, self._failed = to_api(row), True
            return
        self._uploaded = key
        row = repo.mark_ready(conn, report_id, len(body), digest.hexdigest())
        report = to_api(row)
        report.download = issue_link(conn, caller, row)
        self.report = report

    def result(self) -> Report:
        assert self.report is not None, "run() first"
        if self._failed:
            raise Unavailable(
                f"report {self.report.id} failed: report storage is unavailable; try again",
                code="STORAGE_UNAVAILABLE",
            )
        return self.report
