"""One organization's impossible learner days (written as the owner, as no API can) cannot stop
the rollup of every organization: they are left out and reported; the other days and
organizations roll up as usual."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ms8.jobs.rollups import roll_up
from ms8.jobs.runner import JobInput
from tests.support.factories import Factory

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date()


def _day(factory: Factory, org: object, user: object, **figures: int) -> None:
    row = {"events": 1, "completions": 0, "assessments": 1, "scored": 1, "score_micros": 500_000,
           "passed": 1, "duration_seconds": 60, "sessions": 0} | figures
    factory.sql(
        "INSERT INTO learner_daily_activity (organization_id, user_id, day, events, completions, assessments, "
        "scored, score_micros, passed, duration_seconds, sessions, last_at) "
        "VALUES (%(org)s, %(user)s, %(day)s, %(events)s, %(completions)s, %(assessments)s, %(scored)s, "
        "%(score_micros)s, %(passed)s, %(duration_seconds)s, %(sessions)s, now())",
        {"org": org, "user": user, "day": YESTERDAY, **row})


def test_impossible_days_are_left_out_and_reported_and_stop_nothing(factory: Factory) -> None:
    bad = factory.org("Overflowing", a=["learner"], b=["learner"], c=["learner"])
    good = factory.org("Fine", x=["learner"], y=["learner"])
    # Two days whose score sums together exceed bigint: the rollup statement failed for everyone.
    _day(factory, bad.id, bad.users["a"], score_micros=9_000_000_000_000_000_000)
    _day(factory, bad.id, bad.users["b"], score_micros=9_000_000_000_000_000_000)
    _day(factory, bad.id, bad.users["c"], score_micros=800_000)
    _day(factory, good.id, good.users["x"], score_micros=600_000)
    _day(factory, good.id, good.users["y"], score_micros=400_000, duration_seconds=120)
    now = datetime.now(UTC)
    with factory.conn.transaction():
        factory.conn.execute("SELECT app.begin_maintenance()")
        outcome = roll_up(factory.conn, JobInput(now.date(), now, 1))
    assert outcome.reported["OutOfRangeDays"] >= 2
    assert outcome.details["invalidDays"][str(bad.id)] == 2
    rows = factory.sql(
        "SELECT organization_id, learners, active_learners, scored, score_micros FROM population_rollups "
        "WHERE granularity = 'daily' AND period_start = %s AND trainer_id IS NULL "
        "AND organization_id = ANY (%s) ORDER BY learners",
        (YESTERDAY, [bad.id, good.id]))
    assert [tuple(r[1:]) for r in rows] == [(2, 2, 2, 1_000_000), (3, 1, 1, 800_000)]
