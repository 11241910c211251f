"""The planner's view of the rollup job's check of a learner day (migration 0013): with the
statistics on that expression, it expects nearly every day to pass (as they do), not the 1 day in
250 that five column-to-column comparisons guessed a third each would give; the job's plans
(hash joins and aggregates sized for hundreds of thousands of days) depend on it. Fails when the
expression in ms8.repositories.rollups and the one the statistics were made on drift apart."""

from __future__ import annotations

from ms8.repositories.rollups import _VALID_DAY
from tests.support.factories import Factory


def test_the_planner_expects_the_valid_days_to_pass_the_check(factory: Factory) -> None:
    org = factory.org("Planner statistics", a=["learner"])
    factory.sql(
        "INSERT INTO learner_daily_activity (organization_id, user_id, day, events, completions, assessments, "
        "scored, score_micros, passed, duration_seconds, sessions, last_at) "
        "SELECT %s, %s, current_date - g, 3, 1, 1, 1, 500000, 1, 600, 0, now() FROM generate_series(1, 600) g",
        (org.id, org.users["a"]))
    factory.sql("ANALYZE learner_daily_activity")
    rows = factory.sql(f"SELECT count(*) FILTER (WHERE {_VALID_DAY}), count(*) FROM learner_daily_activity d")
    valid, days = rows[0]
    assert days >= 600 and valid >= 600
    def estimate(condition: str) -> float:
        plan = factory.sql(f"EXPLAIN (FORMAT JSON) SELECT * FROM learner_daily_activity d WHERE {condition}")
        return float(plan[0][0][0]["Plan"]["Plan Rows"])

    # Against the estimate of every day (the row-level security policies weigh on both alike).
    # Without the statistics the check's estimate is about 1/250 of it.
    every_day = estimate("true")
    assert estimate(_VALID_DAY) >= 0.9 * every_day * valid / days, (estimate(_VALID_DAY), every_day, valid, days)
