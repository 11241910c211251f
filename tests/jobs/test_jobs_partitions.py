"""The partition job on a real PostgreSQL: partitions ahead, retention, idempotence, overlap;
learner days past retention deleted in batches.

Each test runs in a scratch database of its own (the job drops partitions other tests need).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ms8 import db
from ms8.jobs import partitions
from ms8.jobs.partitions import add_months, cutoffs
from ms8.repositories import maintenance
from tests.support.jobs import (
    PerThreadDatabase,
    invoke,
    load_handler,
    run_concurrently,
    sample_event,
    sql,
)

handler = load_handler("maintain_partitions")
TODAY = datetime.now(UTC).date()
EIGHT_YEARS_ON = add_months(TODAY, 8 * 12)


def bounds(url: str, parent: maintenance.PartitionedTable) -> dict[str, tuple[Any, Any]]:
    with psycopg.connect(url) as conn:
        return {p.name: (p.lower, p.upper) for p in maintenance.partitions(conn, parent)}


def rls_flags(url: str, names: list[str]) -> set[tuple[bool, bool]]:
    rows = sql(url, "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)", (names,))
    assert len(rows) == len(names)
    return {(r[0], r[1]) for r in rows}


def seed_rows(url: str) -> None:
    """History rows (population rollups, and the legacy organization history) across every
    yearly partition, learner days and events across every monthly one, including the days right
    at and right before the 8-years-on cutoff."""
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
    sql(url, """
        INSERT INTO population_rollups (organization_id, granularity, period_start, period_end, learners,
                                        active_learners, completions, assessments, scored, score_micros,
                                        duration_seconds, distribution, version)
        SELECT %s, 'daily', d, d + 1, 1, 1, 1, 0, 0, 0, 60, '{}', 2 FROM unnest(%s::date[]) AS d""",
        (org, sorted(starts)))
    sql(url, """
        INSERT INTO learner_daily_activity (organization_id, user_id, day, events, completions, assessments,
                                            scored, score_micros, passed, duration_seconds, sessions, last_at)
        SELECT %s, %s, d, 1, 0, 0, 0, 0, 0, 60, 1, d::timestamptz FROM unnest(%s::date[]) AS d""",
        (org, user, sorted(starts)))
    sql(url, "INSERT INTO app.population_rollup_inputs (organization_id, granularity, period_start, inputs, digest, "
             "version) SELECT %s, 'daily', d, 1, 0, 2 FROM unnest(%s::date[]) AS d", (org, sorted(starts)))
    sql(url, "INSERT INTO app.rollup_inputs (organization_id, granularity, period_start, events, digest, version) "
             "SELECT %s, 'daily', d, 1, 0, 1 FROM unnest(%s::date[]) AS d", (org, sorted(starts)))
    months = [add_months(TODAY.replace(day=1), i) for i in range(-13, 4)]
    moments = [datetime.combine(m, datetime.min.time(), UTC) + offset
               for m in months for offset in (timedelta(0), timedelta(days=14, hours=12))]
    sql(url, """
        INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, occurred_at)
        SELECT gen_random_uuid(), %s, %s, 'session', 'o', 'course', t FROM unnest(%s::timestamptz[]) AS t""",
        (user, org, moments))


def history(url: str, table: str = "population_rollups") -> list[date]:
    return [r[0] for r in sql(url, f"SELECT period_start FROM {table} ORDER BY 1")]


def learner_days(url: str) -> list[date]:
    return [r[0] for r in sql(url, "SELECT day FROM learner_daily_activity ORDER BY 1")]


def events(url: str) -> list[datetime]:
    return [r[0] for r in sql(url, "SELECT occurred_at FROM learning_events ORDER BY 1")]


def expected_after(before: dict[str, tuple[Any, Any]], cutoff: Any, ahead: dict[str, tuple[Any, Any]]) -> set[str]:
    return {name for name, (_, upper) in before.items() if upper > cutoff} | set(ahead)


def years_ahead(as_of: date) -> dict[str, tuple[date, date]]:
    """The rollups' partitions a run as of `as_of` makes sure of: from the cutoff's year to two years on."""
    first = cutoffs(as_of, 13)[0].year
    return {f"population_rollups_y{y}": (date(y, 1, 1), date(y + 1, 1, 1)) for y in range(first, as_of.year + 3)}


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
    gone = [f"population_rollups_y{TODAY.year + 1}", f"population_rollups_y{TODAY.year + 2}",
            *[f"learning_events_m{add_months(TODAY.replace(day=1), i):%Y_%m}" for i in (1, 2, 3)]]
    legacy = f"aggregated_analytics_y{TODAY.year + 2}"  # no longer written: not made again
    for name in [*gone, legacy]:
        sql(scratch, f"DROP TABLE {name}")
    event = {**sample_event("maintain_partitions"), "scheduledTime": f"{TODAY.isoformat()}T02:00:00Z"}

    first = invoke(handler, event)

    assert first["status"] == "ok"
    assert first["asOf"] == TODAY.isoformat()
    assert sorted(first["details"]["created"]) == sorted(gone)
    assert (first["partitionsCreated"], first["partitionsDropped"]) == (5, 0)
    years = bounds(scratch, "population_rollups")
    months = bounds(scratch, "learning_events")
    assert years == years_ahead(TODAY)  # the 7 retained years, this one and two ahead
    for name, rng in months_ahead(TODAY).items():
        assert months[name] == rng
    assert rls_flags(scratch, gone) == {(True, True)}
    assert legacy not in bounds(scratch, "aggregated_analytics")

    second = invoke(handler, event)
    assert (second["partitionsCreated"], second["partitionsDropped"]) == (0, 0)
    assert bounds(scratch, "population_rollups") == years
    assert bounds(scratch, "learning_events") == months


def test_eight_years_on_drops_what_is_past_retention_and_keeps_every_retained_row(scratch: str) -> None:
    seed_rows(scratch)
    later = EIGHT_YEARS_ON
    agg_cut, events_cut = cutoffs(later, 13)
    years_before = bounds(scratch, "population_rollups")
    legacy_before = bounds(scratch, "aggregated_analytics")
    months_before = bounds(scratch, "learning_events")
    retained = {t: [d for d in history(scratch, t) if d >= agg_cut]
                for t in ("population_rollups", "aggregated_analytics")}
    days_before = learner_days(scratch)
    for table in retained:  # the data set has rows on both sides of the cutoff
        assert retained[table] and any(d < agg_cut for d in history(scratch, table))

    result = invoke(handler, {"date": later.isoformat()})

    assert result["status"] == "ok"
    assert result["details"]["aggregatesCutoff"] == agg_cut.isoformat()
    years_after = bounds(scratch, "population_rollups")
    assert set(years_after) == expected_after(years_before, agg_cut, years_ahead(later))
    assert all(upper > agg_cut for _, upper in years_after.values())
    legacy_after = bounds(scratch, "aggregated_analytics")
    assert set(legacy_after) == expected_after(legacy_before, agg_cut, {})
    # Every row inside retention is still there, and the partition straddling the cutoff too.
    for table, rows in retained.items():
        assert [d for d in history(scratch, table) if d >= agg_cut] == rows
        assert any(d < agg_cut for d in history(scratch, table))
    assert f"population_rollups_y{agg_cut.year}" in years_after
    # Learner days: those before the cutoff are deleted, every other one is kept; the spans the
    # deletion noted for the rollup job are taken back (their periods are past retention).
    assert learner_days(scratch) == [d for d in days_before if d >= agg_cut]
    old_days = len([d for d in days_before if d < agg_cut])
    assert result["details"]["learnerDaysDeleted"] == old_days > 0
    assert result["details"]["learnerDaysLeft"] is False
    assert sql(scratch, "SELECT count(*) FROM app.rollup_pending") == [(0,)]
    # The rollups' fingerprints of periods past retention go too, and only those.
    for table in ("rollup_inputs", "population_rollup_inputs"):
        prints = [r[0] for r in sql(scratch, f"SELECT period_start FROM app.{table} ORDER BY 1")]
        assert prints == retained["aggregated_analytics"] == retained["population_rollups"]
    assert result["rowsWritten"] == result["details"]["fingerprintsForgotten"] + old_days
    assert result["details"]["fingerprintsForgotten"] > 0
    # Events: the whole old window is past 13 months by then; the new months exist.
    months_after = bounds(scratch, "learning_events")
    assert set(months_after) == expected_after(months_before, events_cut, months_ahead(later))
    assert set(months_after) == set(months_ahead(later))
    assert events(scratch) == []
    dropped = (set(years_before) - set(years_after)) | (set(legacy_before) - set(legacy_after)) \
        | (set(months_before) - set(months_after))
    assert sorted(result["details"]["dropped"]) == sorted(dropped)
    assert result["partitionsDropped"] == len(dropped) == 8 + 8 + 17
    assert result["partitionsCreated"] == len(set(years_after) - set(years_before)) + 4 == 8 + 4

    again = invoke(handler, {"date": later.isoformat()})
    assert (again["partitionsCreated"], again["partitionsDropped"], again["rowsWritten"]) == (0, 0, 0)


def test_learner_days_past_retention_go_in_batches_over_runs(scratch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_rows(scratch)
    agg_cut, _ = cutoffs(TODAY, 13)
    org, user = sql(scratch, "SELECT organization_id, id FROM users LIMIT 1")[0]
    extra = [agg_cut - timedelta(days=i) for i in range(1, 8)] + [agg_cut, agg_cut + timedelta(days=1)]
    sql(scratch, """
        INSERT INTO learner_daily_activity (organization_id, user_id, day, events, completions, assessments,
                                            scored, score_micros, passed, duration_seconds, sessions, last_at)
        SELECT %s, %s, d, 1, 0, 0, 0, 0, 0, 60, 1, d::timestamptz FROM unnest(%s::date[]) AS d
        ON CONFLICT DO NOTHING""", (org, user, extra))
    # An erasure's span inside retention, noted before: the rollup job still has to recompute it.
    erased = (TODAY - timedelta(days=10), TODAY - timedelta(days=3))
    sql(scratch, "INSERT INTO app.rollup_pending (organization_id, first_day, last_day) VALUES (%s, %s, %s)",
        (org, *erased))
    before = learner_days(scratch)
    old = len([d for d in before if d < agg_cut])
    assert old >= 9
    monkeypatch.setattr(partitions, "LEARNER_DAYS_BATCH", 2)
    monkeypatch.setattr(partitions, "LEARNER_DAYS_BATCHES", 2)

    deleted = []
    while not deleted or deleted[-1]["learnerDaysLeft"]:
        deleted.append(invoke(handler, {"date": TODAY.isoformat()})["details"])
        assert len(deleted) <= old  # every run makes progress

    assert [d["learnerDaysDeleted"] for d in deleted[:-1]] == [4] * (len(deleted) - 1)
    assert sum(d["learnerDaysDeleted"] for d in deleted) == old
    assert learner_days(scratch) == [d for d in before if d >= agg_cut]
    assert agg_cut in learner_days(scratch)
    assert sql(scratch, "SELECT organization_id, first_day, last_day FROM app.rollup_pending") == [(org, *erased)]
    assert invoke(handler, {"date": TODAY.isoformat()})["details"]["learnerDaysDeleted"] == 0


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
    years_before = bounds(scratch, "population_rollups")
    months_before = bounds(scratch, "learning_events")
    retained = [d for d in history(scratch) if d >= agg_cut]
    days_retained = [d for d in learner_days(scratch) if d >= agg_cut]
    per_thread = PerThreadDatabase()
    monkeypatch.setattr(db, "owner", per_thread)
    try:
        results = run_concurrently([lambda: invoke(handler, {"date": later.isoformat()})] * 2)
    finally:
        per_thread.reset()

    statuses = sorted(r["status"] for r in results)
    assert statuses in (["ok", "ok"], ["ok", "skipped"])
    assert sum(r["partitionsDropped"] for r in results) == 33  # the drops happened exactly once
    assert sum(r["partitionsCreated"] for r in results) == 12
    assert set(bounds(scratch, "population_rollups")) == expected_after(years_before, agg_cut, years_ahead(later))
    assert set(bounds(scratch, "learning_events")) == expected_after(months_before, events_cut, months_ahead(later))
    assert [d for d in history(scratch) if d >= agg_cut] == retained
    assert learner_days(scratch) == days_retained


def test_a_held_lock_makes_a_run_skip_without_touching_anything(scratch: str) -> None:
    before = bounds(scratch, "population_rollups")
    with psycopg.connect(scratch) as holder:
        held = holder.execute("SELECT pg_try_advisory_xact_lock(hashtext('ms8.job:maintain_partitions'))").fetchone()
        assert held == (True,)
        result = invoke(handler, {"date": EIGHT_YEARS_ON.isoformat()})
    assert result["status"] == "skipped"
    assert result["message"] == "skipped: another run holds the lock"
    assert bounds(scratch, "population_rollups") == before
