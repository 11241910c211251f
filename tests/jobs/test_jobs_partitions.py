"""The partition job on a real PostgreSQL: partitions ahead, retention, idempotence, overlap.

Each test runs in a scratch database of its own (the job drops partitions other tests need).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ms8 import db
from ms8.jobs.partitions import add_months, cutoffs
from ms8.repositories import maintenance
from tests.support.jobs import (
    PerThreadDatabase,
    invoke,
    load_handler,
    run_concurrently,
    sample_event,
    scratch_database,
    sql,
    template_database,
)

handler = load_handler("maintain_partitions")
TODAY = datetime.now(UTC).date()
EIGHT_YEARS_ON = add_months(TODAY, 8 * 12)


@pytest.fixture(scope="module")
def template() -> Iterator[str]:
    with template_database("parts_tpl") as name:
        yield name


@pytest.fixture
def scratch(template: str) -> Iterator[str]:
    with scratch_database(f"parts_{uuid.uuid4().hex[:8]}", template) as url:
        yield url


def bounds(url: str, parent: maintenance.PartitionedTable) -> dict[str, tuple[Any, Any]]:
    with psycopg.connect(url) as conn:
        return {p.name: (p.lower, p.upper) for p in maintenance.partitions(conn, parent)}


def rls_flags(url: str, names: list[str]) -> set[tuple[bool, bool]]:
    rows = sql(url, "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)", (names,))
    assert len(rows) == len(names)
    return {(r[0], r[1]) for r in rows}


def seed_rows(url: str) -> None:
    """History rows across every yearly partition and events across every monthly one,
    including the days right at and right before the 8-years-on cutoff."""
    org = uuid.uuid4()
    user = uuid.uuid4()
    sql(url, "INSERT INTO organizations (id, name) VALUES (%s, 'P')", (org,))
    sql(url, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, 'u', '{learner}')",
        (user, org, f"{user.hex}@example.test"))
    agg_cut, _ = cutoffs(EIGHT_YEARS_ON, 13)
    starts = {agg_cut, agg_cut - timedelta(days=1)}
    for year in range(TODAY.year - 7, TODAY.year + 3):
        starts |= {date(year, 1, 1), date(year, 6, 15), date(year, 12, 31)}
    sql(url, """
        INSERT INTO aggregated_analytics (organization_id, granularity, role, analytics_type,
                                          period_start, period_end, user_count, data)
        SELECT %s, 'daily', 'learner', 'engagement', d, d + 1, 10, '{"avg": 0.5}'
        FROM unnest(%s::date[]) AS d""", (org, sorted(starts)))
    sql(url, "INSERT INTO app.rollup_inputs (organization_id, granularity, period_start, events, digest, version) "
             "SELECT %s, 'daily', d, 1, 0, 1 FROM unnest(%s::date[]) AS d", (org, sorted(starts)))
    months = [add_months(TODAY.replace(day=1), i) for i in range(-13, 4)]
    moments = [datetime.combine(m, datetime.min.time(), UTC) + offset
               for m in months for offset in (timedelta(0), timedelta(days=14, hours=12))]
    sql(url, """
        INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, occurred_at)
        SELECT gen_random_uuid(), %s, %s, 'session', 'o', 'course', t FROM unnest(%s::timestamptz[]) AS t""",
        (user, org, moments))


def history(url: str) -> list[date]:
    return [r[0] for r in sql(url, "SELECT period_start FROM aggregated_analytics ORDER BY 1")]


def events(url: str) -> list[datetime]:
    return [r[0] for r in sql(url, "SELECT occurred_at FROM learning_events ORDER BY 1")]


def expected_after(before: dict[str, tuple[Any, Any]], cutoff: Any, ahead: dict[str, tuple[Any, Any]]) -> set[str]:
    return {name for name, (_, upper) in before.items() if upper > cutoff} | set(ahead)


def years_ahead(as_of: date) -> dict[str, tuple[date, date]]:
    return {f"aggregated_analytics_y{y}": (date(y, 1, 1), date(y + 1, 1, 1)) for y in range(as_of.year, as_of.year + 3)}


def months_ahead(as_of: date) -> dict[str, tuple[datetime, datetime]]:
    first = as_of.replace(day=1)
    out = {}
    for i in range(4):
        m = add_months(first, i)
        out[f"learning_events_m{m:%Y_%m}"] = (
            datetime.combine(m, datetime.min.time(), UTC),
            datetime.combine(add_months(m, 1), datetime.min.time(), UTC),
        )
    return out


def test_creates_the_partitions_ahead_with_rls_and_a_rerun_changes_nothing(scratch: str) -> None:
    # The migration made this window already: take the ahead ones away for the job to restore.
    gone = [f"aggregated_analytics_y{TODAY.year + 1}", f"aggregated_analytics_y{TODAY.year + 2}",
            *[f"learning_events_m{add_months(TODAY.replace(day=1), i):%Y_%m}" for i in (1, 2, 3)]]
    for name in gone:
        sql(scratch, f"DROP TABLE {name}")
    event = {**sample_event("maintain_partitions"), "scheduledTime": f"{TODAY.isoformat()}T02:00:00Z"}

    first = invoke(handler, event)

    assert first["status"] == "ok"
    assert first["asOf"] == TODAY.isoformat()
    assert sorted(first["details"]["created"]) == sorted(gone)
    assert (first["partitionsCreated"], first["partitionsDropped"]) == (5, 0)
    years = bounds(scratch, "aggregated_analytics")
    months = bounds(scratch, "learning_events")
    for name, rng in years_ahead(TODAY).items():
        assert years[name] == rng
    for name, rng in months_ahead(TODAY).items():
        assert months[name] == rng
    assert rls_flags(scratch, gone) == {(True, True)}

    second = invoke(handler, event)
    assert (second["partitionsCreated"], second["partitionsDropped"]) == (0, 0)
    assert bounds(scratch, "aggregated_analytics") == years
    assert bounds(scratch, "learning_events") == months


def test_eight_years_on_drops_what_is_past_retention_and_keeps_every_retained_row(scratch: str) -> None:
    seed_rows(scratch)
    later = EIGHT_YEARS_ON
    agg_cut, events_cut = cutoffs(later, 13)
    years_before = bounds(scratch, "aggregated_analytics")
    months_before = bounds(scratch, "learning_events")
    retained_history = [d for d in history(scratch) if d >= agg_cut]
    assert retained_history  # the data set has rows on both sides of the cutoff
    assert any(d < agg_cut for d in history(scratch))

    result = invoke(handler, {"date": later.isoformat()})

    assert result["status"] == "ok"
    assert result["details"]["aggregatesCutoff"] == agg_cut.isoformat()
    years_after = bounds(scratch, "aggregated_analytics")
    assert set(years_after) == expected_after(years_before, agg_cut, years_ahead(later))
    assert all(upper > agg_cut for _, upper in years_after.values())
    # Every row inside retention is still there, and the partition straddling the cutoff too.
    assert [d for d in history(scratch) if d >= agg_cut] == retained_history
    assert f"aggregated_analytics_y{agg_cut.year}" in years_after
    assert any(d < agg_cut for d in history(scratch))
    # The rollups' fingerprints of periods past retention go too, and only those.
    prints = [r[0] for r in sql(scratch, "SELECT period_start FROM app.rollup_inputs ORDER BY 1")]
    assert prints == retained_history
    assert result["rowsWritten"] == result["details"]["fingerprintsForgotten"] > 0
    # Events: the whole old window is past 13 months by then; the new months exist.
    months_after = bounds(scratch, "learning_events")
    assert set(months_after) == expected_after(months_before, events_cut, months_ahead(later))
    assert set(months_after) == set(months_ahead(later))
    assert events(scratch) == []
    dropped = set(years_before) - set(years_after) | set(months_before) - set(months_after)
    assert sorted(result["details"]["dropped"]) == sorted(dropped)
    assert result["partitionsDropped"] == len(dropped) == 8 + 17

    again = invoke(handler, {"date": later.isoformat()})
    assert (again["partitionsCreated"], again["partitionsDropped"]) == (0, 0)


def test_events_retention_is_configurable_and_never_drops_a_retained_event(
    scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_rows(scratch)
    as_of = add_months(TODAY, 2)
    _, events_cut = cutoffs(as_of, 13)
    # Right at the cutoff (retained) and just before it (in a partition that straddles it).
    sql(scratch, """
        INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, occurred_at)
        SELECT gen_random_uuid(), user_id, organization_id, 'session', 'edge', 'course', t
        FROM (SELECT user_id, organization_id FROM learning_events LIMIT 1) u, unnest(%s::timestamptz[]) AS t""",
        ([events_cut, events_cut - timedelta(seconds=1)],))
    before = events(scratch)
    months_before = bounds(scratch, "learning_events")

    monkeypatch.setenv("EVENTS_RETENTION_MONTHS", "24")
    kept = invoke(handler, {"date": as_of.isoformat()})
    assert not [n for n in kept["details"]["dropped"] if n.startswith("learning_events")]
    assert events(scratch) == before

    monkeypatch.setenv("EVENTS_RETENTION_MONTHS", "1")
    with pytest.raises(ValueError, match="EVENTS_RETENTION_MONTHS"):
        invoke(handler, {"date": as_of.isoformat()})

    monkeypatch.delenv("EVENTS_RETENTION_MONTHS")
    result = invoke(handler, {"date": as_of.isoformat()})
    dropped = {n for n, (_, upper) in months_before.items() if upper <= events_cut}
    assert {n for n in result["details"]["dropped"] if n.startswith("learning_events")} == dropped
    assert len(dropped) == 2  # the oldest two months are wholly past 13 months two months on
    after = events(scratch)
    assert [t for t in before if t >= events_cut] == [t for t in after if t >= events_cut]
    assert events_cut - timedelta(seconds=1) in after
    assert all(t >= max(months_before[n][1] for n in dropped) for t in after)  # the dropped ones' rows are gone


def test_two_overlapping_runs_end_as_one(scratch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_rows(scratch)
    later = EIGHT_YEARS_ON
    agg_cut, events_cut = cutoffs(later, 13)
    years_before = bounds(scratch, "aggregated_analytics")
    months_before = bounds(scratch, "learning_events")
    retained = [d for d in history(scratch) if d >= agg_cut]
    per_thread = PerThreadDatabase()
    monkeypatch.setattr(db, "owner", per_thread)
    try:
        results = run_concurrently([lambda: invoke(handler, {"date": later.isoformat()})] * 2)
    finally:
        per_thread.reset()

    statuses = sorted(r["status"] for r in results)
    assert statuses in (["ok", "ok"], ["ok", "skipped"])
    assert sum(r["partitionsDropped"] for r in results) == 25  # the drops happened exactly once
    assert sum(r["partitionsCreated"] for r in results) == 7
    assert set(bounds(scratch, "aggregated_analytics")) == expected_after(years_before, agg_cut, years_ahead(later))
    assert set(bounds(scratch, "learning_events")) == expected_after(months_before, events_cut, months_ahead(later))
    assert [d for d in history(scratch) if d >= agg_cut] == retained


def test_a_held_lock_makes_a_run_skip_without_touching_anything(scratch: str) -> None:
    before = bounds(scratch, "aggregated_analytics")
    with psycopg.connect(scratch) as holder:
        held = holder.execute("SELECT pg_try_advisory_xact_lock(hashtext('ms8.job:maintain_partitions'))").fetchone()
        assert held == (True,)
        result = invoke(handler, {"date": EIGHT_YEARS_ON.isoformat()})
    assert result["status"] == "skipped"
    assert result["message"] == "skipped: another run holds the lock"
    assert bounds(scratch, "aggregated_analytics") == before
