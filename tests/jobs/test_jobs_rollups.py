"""The rollup job on a real PostgreSQL: hand-computed figures, idempotence, replays that see
changes (and erasures), overlapping runs, and a period without a partition."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from ms8 import db
from ms8.jobs.partitions import add_months
from ms8.jobs.rollups import windows
from ms8.repositories import rollups as repo
from tests.support.jobs import (
    PerThreadDatabase,
    invoke,
    load_handler,
    run_concurrently,
    scratch_database,
    sql,
    template_database,
)

handler = load_handler("rollup_analytics")
TODAY = datetime.now(UTC).date()
# An ISO week inside one month, two months back (inside the events' 13-month retention).
_FIRST = add_months(TODAY.replace(day=1), -2)
MONDAY = _FIRST + timedelta(days=(7 - _FIRST.weekday()) % 7)
MONTH_DAYS = calendar.monthrange(MONDAY.year, MONDAY.month)[1]
# A run as of the next month's first day, 40 days back: every day, the week and the month.
RUN = {"date": add_months(MONDAY.replace(day=1), 1).isoformat(), "days": 40}
GRANULARITIES = ("daily", "weekly", "monthly")


def at(day_offset: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(MONDAY + timedelta(days=day_offset), time(hour, minute, second), UTC)


@dataclass
class Data:
    org_a: UUID
    org_b: UUID
    users: dict[str, UUID]


@pytest.fixture(scope="module")
def template() -> Iterator[str]:
    with template_database("rollups_tpl") as name:
        yield name


@pytest.fixture
def scratch(template: str) -> Iterator[str]:
    with scratch_database(f"rollups_{uuid.uuid4().hex[:8]}", template) as url:
        yield url


def add_events(url: str, rows: list[tuple[UUID, UUID, str, float | None, datetime]]) -> None:
    sql(url, """
        INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, score,
                                     occurred_at)
        SELECT gen_random_uuid(), u, o, v, 'course-1', 'course', s, t
        FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::real[], %s::timestamptz[]) AS x(u, o, v, s, t)""",
        ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
         [r[4] for r in rows]))


def seed(url: str) -> Data:
    """Org A: learners l1..l3 active, l4 idle, a trainer whose completions must not count;
    org B: one learner. Every event inside the week starting MONDAY."""
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    sql(url, "INSERT INTO organizations (id, name) VALUES (%s, 'A'), (%s, 'B')", (org_a, org_b))
    users: dict[str, UUID] = {}
    for key, org, roles in [("l1", org_a, ["learner"]), ("l2", org_a, ["learner", "trainer"]),
                            ("l3", org_a, ["learner"]), ("l4", org_a, ["learner"]),
                            ("t", org_a, ["trainer"]), ("b1", org_b, ["learner"])]:
        users[key] = uuid.uuid4()
        sql(url, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, %s, %s)",
            (users[key], org, f"{key}-{users[key].hex}@example.test", key, roles))
    l1, l2, l3, t, b1 = users["l1"], users["l2"], users["l3"], users["t"], users["b1"]
    add_events(url, [
        (l1, org_a, "completed", None, at(0, 9)), (l1, org_a, "completed", None, at(0, 10)),
        (l1, org_a, "passed", 0.8, at(0, 11)),
        (l1, org_a, "completed", None, at(2, 23, 59, 59)), (l1, org_a, "failed", 0.4, at(2, 23, 30)),
        (l2, org_a, "session", None, at(0)), (l2, org_a, "attempted", 0.6, at(1)),
        (l2, org_a, "progressed", None, at(1, 13)), (l2, org_a, "completed", None, at(4, 0, 0, 0)),
        (l3, org_a, "completed", None, at(0)), (l3, org_a, "passed", 1.0, at(0, 14)),
        (l3, org_a, "failed", None, at(0, 15)),  # no score: not a scored event
        *[(t, org_a, "completed", None, at(0, h)) for h in range(5)],  # a trainer: not a learner
        (b1, org_b, "completed", None, at(0)),
    ])
    return Data(org_a, org_b, users)


def stats(values: list[float], metric: str) -> dict[str, Any]:
    """percentile_cont by hand: linear interpolation at p * (n - 1) in the sorted values."""
    v = sorted(values)

    def pct(p: float) -> float:
        pos = p * (len(v) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(v) - 1)
        return v[lo] + (pos - lo) * (v[hi] - v[lo])

    return {"metric": metric, "avg": sum(v) / len(v), "p25": pct(0.25), "p50": pct(0.5), "p75": pct(0.75),
            "p90": pct(0.9), "min": v[0], "max": v[-1]}


def expected(data: Data) -> dict[tuple[UUID, str, str, date], tuple[date, int, dict[str, Any]]]:
    """The figures worked out by hand from the data set above."""
    a, b, m = data.org_a, data.org_b, MONDAY
    out: dict[tuple[UUID, str, str, date], tuple[date, int, dict[str, Any]]] = {}

    def put(org: UUID, gran: str, start: date, end: date, velocity: list[float], engagement: list[float],
            mastery: list[float]) -> None:
        for kind, metric, values in [("learning_velocity", "velocity", velocity),
                                     ("engagement", "engagement", engagement), ("mastery", "mastery", mastery)]:
            if values:
                out[(org, gran, kind, start)] = (end, len(values), stats(values, metric))

    day = timedelta(days=1)
    # Daily: velocity = completions * 7 / 1 day; engagement 1 for anyone active that day.
    put(a, "daily", m, m + day, [14, 0, 7], [1, 1, 1], [0.8, 1.0])             # l1, l2, l3
    put(a, "daily", m + day, m + 2 * day, [0], [1], [0.6])                      # l2
    put(a, "daily", m + 2 * day, m + 3 * day, [7], [1], [0.4])                  # l1
    put(a, "daily", m + 4 * day, m + 5 * day, [7], [1], [])                     # l2
    put(b, "daily", m, m + day, [7], [1], [])
    # Weekly: l1 3 completions on 2 days, scores .8 .4; l2 1 on 3 days, .6; l3 1 on 1 day, 1.0.
    week = timedelta(days=7)
    put(a, "weekly", m, m + week, [3, 1, 1], [2 / 7, 3 / 7, 1 / 7], [0.6, 0.6, 1.0])
    put(b, "weekly", m, m + week, [1], [1 / 7], [])
    # Monthly: the same counts over the month's length.
    first, n = m.replace(day=1), MONTH_DAYS
    nxt = add_months(first, 1)
    put(a, "monthly", first, nxt, [21 / n, 7 / n, 7 / n], [2 / n, 3 / n, 1 / n], [0.6, 0.6, 1.0])
    put(b, "monthly", first, nxt, [7 / n], [1 / n], [])
    return out


def stored(url: str, orgs: list[UUID]) -> dict[tuple[UUID, str, str, date], tuple[date, int, dict[str, Any]]]:
    rows = sql(url, "SELECT organization_id, granularity, analytics_type, period_start, period_end, user_count, "
                    "data, role FROM aggregated_analytics WHERE organization_id = ANY(%s)", (orgs,))
    assert {r[7] for r in rows} <= {"learner"}
    return {(r[0], r[1], r[2], r[3]): (r[4], r[5], r[6]) for r in rows}


def assert_matches(actual: dict[Any, Any], wanted: dict[Any, Any]) -> None:
    assert set(actual) == set(wanted)
    for key, (end, count, figures) in wanted.items():
        got_end, got_count, got = actual[key]
        assert (got_end, got_count) == (end, count), key
        assert got["metric"] == figures["metric"]
        for name in ("avg", "p25", "p50", "p75", "p90", "min", "max"):
            assert got[name] == pytest.approx(figures[name], abs=1.5e-6), (key, name)


def test_windows_cover_yesterday_last_iso_week_and_last_month() -> None:
    thursday = date(2026, 11, 26)
    assert windows(thursday) == {
        "daily": (date(2026, 11, 25), thursday),
        "weekly": (date(2026, 11, 16), date(2026, 11, 23)),
        "monthly": (date(2026, 10, 1), date(2026, 11, 1)),
    }
    spans = windows(date(2026, 3, 2), 90)  # a Monday; 90 days back is 2025-12-02
    assert spans["daily"] == (date(2025, 12, 2), date(2026, 3, 2))
    assert spans["weekly"] == (date(2025, 12, 1), date(2026, 3, 2))
    assert spans["monthly"] == (date(2025, 12, 1), date(2026, 3, 1))
    # 2026-12-28 (Monday) begins ISO week 53 of 2026, which ends in 2027.
    assert windows(date(2027, 1, 4))["weekly"] == (date(2026, 12, 28), date(2027, 1, 4))


def test_rollup_equals_the_hand_computed_figures_and_a_rerun_writes_nothing(scratch: str) -> None:
    data = seed(scratch)

    first = invoke(handler, RUN)

    assert first["status"] == "ok"
    assert first["rowsWritten"] == 23
    assert_matches(stored(scratch, [data.org_a, data.org_b]), expected(data))
    before = sql(scratch, "SELECT id, updated_at, xmin::text FROM aggregated_analytics ORDER BY id")

    again = invoke(handler, RUN)

    assert [first["details"][g]["periodsChanged"] for g in GRANULARITIES] == [5, 2, 2]
    assert again["rowsWritten"] == 0
    assert [again["details"][g]["periodsChanged"] for g in GRANULARITIES] == [0, 0, 0]
    # Not even touched: same row versions (xmin), same updated_at.
    assert sql(scratch, "SELECT id, updated_at, xmin::text FROM aggregated_analytics ORDER BY id") == before


def test_a_replay_picks_up_new_events_and_erasures(scratch: str) -> None:
    data = seed(scratch)
    invoke(handler, RUN)
    l3 = data.users["l3"]
    add_events(scratch, [(l3, data.org_a, "completed", None, at(5))])

    grown = invoke(handler, RUN)

    # Day M+5 is new (velocity, engagement); week and month change for those two types only.
    daily = grown["details"]["daily"]
    assert (daily["inserted"], daily["updated"], daily["deleted"]) == (2, 0, 0)
    assert [grown["details"][g]["periodsChanged"] for g in GRANULARITIES] == [1, 1, 1]  # only org A's
    assert (grown["details"]["weekly"]["updated"], grown["details"]["monthly"]["updated"]) == (2, 2)
    week = stored(scratch, [data.org_a])[(data.org_a, "weekly", "learning_velocity", MONDAY)]
    assert week[2]["max"] == 3 and week[2]["avg"] == pytest.approx(6 / 3, abs=1e-6)  # l3 now 2/week

    # l2 erased (events cascade): the days only l2 was active on have no row left.
    sql(scratch, "DELETE FROM users WHERE id = %s", (data.users["l2"],))
    shrunk = invoke(handler, RUN)

    assert shrunk["details"]["daily"]["deleted"] == 5  # M+1 (3 types) and M+4 (2 types)
    assert [shrunk["details"][g]["periodsChanged"] for g in GRANULARITIES] == [3, 1, 1]  # M, M+1, M+4
    days = {k[3] for k in stored(scratch, [data.org_a]) if k[1] == "daily"}
    assert days == {MONDAY, MONDAY + timedelta(days=2), MONDAY + timedelta(days=5)}
    assert invoke(handler, RUN)["rowsWritten"] == 0


def test_a_role_change_is_an_input_change(scratch: str) -> None:
    data = seed(scratch)
    invoke(handler, RUN)
    sql(scratch, "UPDATE users SET roles = '{trainer}' WHERE id = %s", (data.users["l1"],))

    result = invoke(handler, RUN)

    # l1 was active on M and M+2: those days, the week and the month are recomputed without l1.
    assert [result["details"][g]["periodsChanged"] for g in GRANULARITIES] == [2, 1, 1]
    rows = stored(scratch, [data.org_a])
    assert rows[(data.org_a, "daily", "learning_velocity", MONDAY)][1] == 2
    assert (data.org_a, "daily", "engagement", MONDAY + timedelta(days=2)) not in rows
    assert rows[(data.org_a, "weekly", "mastery", MONDAY)][2]["avg"] == pytest.approx(0.8)  # l2 .6, l3 1.0


def test_periods_are_recomputed_when_their_bookkeeping_is_missing_or_outdated(
    scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = seed(scratch)
    invoke(handler, RUN)
    wanted = expected(data)

    sql(scratch, "DELETE FROM app.rollup_inputs")  # rows without fingerprints: recomputed, same figures
    again = invoke(handler, RUN)
    assert [again["details"][g]["periodsChanged"] for g in GRANULARITIES] == [5, 2, 2]
    assert again["rowsWritten"] == 0

    monkeypatch.setattr(repo, "ROLLUP_VERSION", repo.ROLLUP_VERSION + 1)  # a new definition
    bumped = invoke(handler, RUN)
    assert [bumped["details"][g]["periodsChanged"] for g in GRANULARITIES] == [5, 2, 2]

    sql(scratch, "DELETE FROM aggregated_analytics WHERE granularity = 'weekly' AND analytics_type = 'engagement' "
                 "AND organization_id = %s", (data.org_b,))  # a fingerprint without its rows
    restored = invoke(handler, RUN)
    assert restored["details"]["weekly"] | {"from": 0, "to": 0} == {
        "from": 0, "to": 0, "periodsChanged": 1, "inserted": 1, "updated": 0, "deleted": 0}
    assert_matches(stored(scratch, [data.org_a, data.org_b]), wanted)


def test_two_overlapping_runs_end_as_one(scratch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = seed(scratch)
    per_thread = PerThreadDatabase()
    monkeypatch.setattr(db, "owner", per_thread)
    try:
        results = run_concurrently([lambda: invoke(handler, RUN)] * 2)
    finally:
        per_thread.reset()
    assert sorted(r["status"] for r in results) in (["ok", "ok"], ["ok", "skipped"])
    assert sum(r["rowsWritten"] for r in results) == 23
    assert_matches(stored(scratch, [data.org_a, data.org_b]), expected(data))


def test_a_period_without_a_partition_gets_one_and_the_bare_insert_fails_loudly(scratch: str) -> None:
    data = seed(scratch)
    partition = f"aggregated_analytics_y{MONDAY.year}"
    sql(scratch, f"DROP TABLE {partition}")

    result = invoke(handler, RUN)

    assert partition in result["details"]["partitionsCreated"]
    assert result["partitionsCreated"] >= 1
    assert_matches(stored(scratch, [data.org_a, data.org_b]), expected(data))

    # Without the job's partition step the statement itself refuses the rows: nothing is lost quietly.
    sql(scratch, f"DROP TABLE {partition}")
    with psycopg.connect(scratch) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        with pytest.raises(psycopg.errors.CheckViolation, match="no partition of relation"):
            repo.rollup(conn, "weekly", MONDAY, MONDAY + timedelta(days=7))


def test_a_rollup_older_than_the_events_retention_is_refused(scratch: str) -> None:
    oldest = sql(scratch, "SELECT min(relname) FROM pg_class WHERE relname LIKE 'learning\\_events\\_m%' "
                          "AND relkind = 'r'")[0][0]
    sql(scratch, f"DROP TABLE {oldest}")  # as the partition job does once it is past retention
    with pytest.raises(ValueError, match="no longer retained"):
        invoke(handler, {"date": TODAY.isoformat(), "days": 400})
