"""What the jobs share: the day a run is for, its structured log line and its metrics."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from ms8.jobs import runner
from ms8.jobs.runner import JobInput, parse_event
from tests.support.jobs import invoke, load_handler, sample_event

CLOCK = datetime(2026, 11, 26, 20, 30, tzinfo=UTC)


def parse(event: Any) -> JobInput:
    return parse_event(event, clock=lambda: CLOCK)


def test_the_day_comes_from_the_event_then_the_schedule_then_the_clock() -> None:
    assert parse({}) == JobInput(date(2026, 11, 26), CLOCK)
    assert parse(None) == JobInput(date(2026, 11, 26), CLOCK)
    assert parse({"date": "2026-03-01", "days": 90}) == JobInput(
        date(2026, 3, 1), datetime(2026, 3, 1, tzinfo=UTC), 90, replay=True)
    assert parse({"scheduledTime": "2026-11-27T00:30:00+01:00"}) == JobInput(
        date(2026, 11, 26), datetime(2026, 11, 26, 23, 30, tzinfo=UTC))
    assert parse(sample_event("maintain_partitions_rule")).now == datetime(2026, 11, 26, 2, tzinfo=UTC)
    # EventBridge detail carrying the date; an explicit date wins over the schedule's time.
    assert parse({"detail-type": "Replay", "time": "2026-11-26T02:00:00Z", "detail": {"date": "2026-01-31"}}
                 ).as_of == date(2026, 1, 31)


@pytest.mark.parametrize("name", ["refresh_comparison", "maintain_partitions", "maintain_partitions_rule",
                                  "rollup_analytics", "rollup_analytics_backfill", "recompute_stale"])
def test_every_sample_event_parses(name: str) -> None:
    params = parse(sample_event(name))
    assert params.as_of == date(2026, 11, 26)
    assert params.now != CLOCK  # the day came from the event, not from the clock


@pytest.mark.parametrize(("event", "message"), [
    ({"date": "26/11/2026"}, "not a date"),
    ({"date": 20261126}, "must be a string"),
    ({"days": 0}, "days"),
    ({"days": True}, "days"),
    ({"days": "90"}, "days"),
    ({"scheduledTime": "2026-11-26T03:15:00"}, "time zone"),
    ({"scheduledTime": "yesterday"}, "not an ISO 8601"),
    (["2026-11-26"], "JSON object"),
])
def test_a_malformed_event_is_refused(event: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(event)


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_a_run_logs_its_result_as_json_and_emits_metrics(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    handler = load_handler("maintain_partitions")
    today = datetime.now(UTC).date().isoformat()
    # Today's window is what the migrations made: the run creates and drops nothing.
    result = invoke(handler, {"scheduledTime": f"{today}T02:00:00Z", "executionId": "exec-1", "attempt": "1"})
    emitted = _json_lines(capfd.readouterr().out)

    record = next(r for r in caplog.records if r.getMessage() == "maintain_partitions: ok")
    log = json.loads(runner.logger.registered_formatter.format(record))  # the line CloudWatch gets
    assert log["result"] == result
    assert (log["job"], log["executionId"], log["function_name"]) == ("maintain_partitions", "exec-1", "ms8-job-test")
    emf = next(line for line in emitted if "_aws" in line)
    names = {m["Name"] for d in emf["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert names >= {"RowsWritten", "PartitionsCreated", "PartitionsDropped", "Duration", "Skipped"}
    assert emf["job"] == "maintain_partitions"
    assert (emf["PartitionsCreated"], emf["PartitionsDropped"], emf["Skipped"]) == ([0], [0], [0])
    assert emf["Duration"][0] == pytest.approx(result["durationMs"], abs=0.1)


def test_a_failed_run_is_logged_counted_and_raised(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    handler = load_handler("maintain_partitions")
    with pytest.raises(ValueError, match="not a date"):
        invoke(handler, {"date": "tomorrow"})
    emitted = _json_lines(capfd.readouterr().out)
    failed = next(r for r in caplog.records if r.getMessage() == "maintain_partitions: failed")
    log = json.loads(runner.logger.registered_formatter.format(failed))
    assert (log["level"], log["exception_name"]) == ("ERROR", "ValueError")
    assert any(line.get("Failures") == [1] for line in emitted if "_aws" in line)

