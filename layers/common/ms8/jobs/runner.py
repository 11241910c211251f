"""What every scheduled job shares: the date it acts for, the overlap guard, logs and metrics.

A job is a function `(conn, JobInput) -> Outcome` run inside one maintenance transaction on the
owner connection. Before anything else the transaction takes `pg_try_advisory_xact_lock` on the
job's name: a second run that overlaps the first returns "skipped" at once instead of queueing
or doing the work twice. The lock is transaction-scoped, so it vanishes with the commit or
rollback (a crashed run never leaves it behind) and, unlike a session lock, does not pin an
RDS Proxy connection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import psycopg
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from ms8 import db
from ms8.repositories import maintenance

# The template sets both names for every function; the defaults keep local runs tidy.
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "ms8-learning-analytics"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MS8LearningAnalytics"))

MAX_DAYS = 3660  # a backfill of ten years is already far beyond the events' retention
SKIPPED = "skipped: another run holds the lock"


@dataclass(frozen=True, slots=True)
class JobInput:
    """What one run acts for.

    `as_of` is the UTC day the run is for (today, the schedule's day, or the event's `date`);
    `now` the instant it counts as (midnight UTC of an explicit `date`); `days` an optional
    backfill length; `replay` tells that the day came from the event rather than the clock.
    """

    as_of: date
    now: datetime
    days: int | None = None
    replay: bool = False


@dataclass(slots=True)
class Outcome:
    """What a job did; `details` is any JSON-ready extra worth logging."""

    rows_written: int = 0
    partitions_created: int = 0
    partitions_dropped: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    # Counts a job reports as metrics of their own (e.g. rows it had to leave out), by metric name.
    reported: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobResult:
    """One run as logged, emitted as metrics and returned by the handler."""

    job: str
    status: Literal["ok", "skipped"]
    as_of: date
    duration_ms: float
    rows_written: int = 0
    partitions_created: int = 0
    partitions_dropped: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    reported: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job, "status": self.status, "asOf": self.as_of.isoformat(),
            "durationMs": round(self.duration_ms, 1), "rowsWritten": self.rows_written,
            "partitionsCreated": self.partitions_created,
            "partitionsDropped": self.partitions_dropped, "details": self.details,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    work: Callable[[psycopg.Connection, JobInput], Outcome]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _instant(value: Any, key: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"`{key}` must be an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"`{key}` is not an ISO 8601 timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        raise ValueError(f"`{key}` needs a time zone (e.g. a trailing Z): {value!r}")
    return moment.astimezone(UTC)


def parse_event(event: Mapping[str, Any] | None, clock: Callable[[], datetime] = _utc_now) -> JobInput:
    """The run's day from the event, most explicit first.

    1. `date` ("YYYY-MM-DD", at the top or in an EventBridge `detail`): a backfill or replay;
    2. `scheduledTime` (what the Scheduler's `<aws.scheduler.scheduled-time>` fills in: a retried
       invocation still acts for the day it was scheduled for) or an EventBridge event's `time`;
    3. otherwise the clock.
    `days` (1..3660) asks for a backfill of that many days ending before the day. Anything
    malformed raises ValueError: a job never guesses which day it was meant for.
    """
    event = event or {}
    if not isinstance(event, Mapping):
        raise ValueError("the event must be a JSON object")
    raw_detail = event.get("detail")
    detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, Mapping) else {}
    raw_date = event.get("date", detail.get("date"))
    raw_days = event.get("days", detail.get("days"))
    days: int | None = None
    if raw_days is not None:
        if isinstance(raw_days, bool) or not isinstance(raw_days, int) or not 1 <= raw_days <= MAX_DAYS:
            raise ValueError(f"`days` must be an integer in 1..{MAX_DAYS}")
        days = raw_days
    if raw_date is not None:
        if not isinstance(raw_date, str):
            raise ValueError("`date` must be a string YYYY-MM-DD")
        try:
            as_of = date.fromisoformat(raw_date)
        except ValueError as exc:
            raise ValueError(f"`date` is not a date YYYY-MM-DD: {raw_date!r}") from exc
        now = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
        return JobInput(as_of, now, days, replay=True)
    if "scheduledTime" in event:
        now = _instant(event["scheduledTime"], "scheduledTime")
    elif "time" in event and "detail-type" in event:
        now = _instant(EventBridgeEvent(dict(event)).time, "time")
    else:
        now = clock().astimezone(UTC)
    return JobInput(now.date(), now, days)


def run(job: Job, event: Mapping[str, Any] | None, database: db.Database | None = None) -> JobResult:
    """Run `job` once in one owner transaction; skip at once if another run holds its lock."""
    started = time.perf_counter()
    params = parse_event(event)
    database = database or db.owner  # looked up per call, so tests can swap the connection
    with database.transaction(lambda conn: maintenance.begin_job(conn, job.name)) as (conn, locked):
        outcome = job.work(conn, params) if locked else None
    elapsed = (time.perf_counter() - started) * 1000
    if outcome is None:
        return JobResult(job.name, "skipped", params.as_of, elapsed, message=SKIPPED)
    return JobResult(
        job.name, "ok", params.as_of, elapsed, outcome.rows_written, outcome.partitions_created,
        outcome.partitions_dropped, outcome.details, reported=outcome.reported,
    )


def emit(result: JobResult) -> None:
    """Log the result as one JSON record and add its figures to this invocation's metrics."""
    logger.info(f"{result.job}: {result.status}", extra={"result": result.as_dict()})
    metrics.add_metric(name="RowsWritten", unit=MetricUnit.Count, value=result.rows_written)
    metrics.add_metric(name="PartitionsCreated", unit=MetricUnit.Count, value=result.partitions_created)
    metrics.add_metric(name="PartitionsDropped", unit=MetricUnit.Count, value=result.partitions_dropped)
    metrics.add_metric(name="Duration", unit=MetricUnit.Milliseconds, value=result.duration_ms)
    metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=int(result.status == "skipped"))
    for name, value in result.reported.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def handler(job: Job) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point of a scheduled job: logging context, metrics, the run itself.

    A failure is logged, counted (`Failures`) and raised again, so the invocation fails and the
    schedule's retry policy and dead-letter queue see it.
    """

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(raise_on_empty_metrics=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # A flush skipped (metrics disabled) leaves the last invocation's set behind: start clean.
        metrics.clear_metrics()
        metrics.add_dimension(name="job", value=job.name)
        logger.append_keys(job=job.name)
        if isinstance(event, Mapping):  # the Scheduler's context attributes, when the input has them
            logger.append_keys(**{k: event[k] for k in ("executionId", "attempt") if k in event})
        try:
            result = run(job, event)
        except Exception:
            logger.exception(f"{job.name}: failed")
            metrics.add_metric(name="Failures", unit=MetricUnit.Count, value=1)
            raise
        emit(result)
        return result.as_dict()

    entry: Callable[[dict[str, Any], LambdaContext], dict[str, Any]] = lambda_handler  # decorators lose the type
    return entry
