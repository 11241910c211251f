"""Peer comparison through app.peer_comparison(), as the runtime role: k-anonymous (groups of at
least 10 distinct users), the caller's organization and active role only, recent numeric values
in their documented range only, and no error before the first refresh. Which values a group holds
is checked on the view's exact statistics (owner side); what the runtime role reads is the noisy
release of them (tests/unit/test_privacy.py for the noise)."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from ms8 import db
from tests.support.factories import Factory

METRIC = {"learning_velocity": "velocity", "engagement": "engagement", "mastery": "mastery", "skill_gap": "gap"}


def _group(
    factory: Factory, org_id: UUID, data: Sequence[dict[str, Any]], role: str = "learner",
    analytics_type: str = "mastery", roles: Sequence[str] | None = None,
) -> list[UUID]:
    """New users of `org_id`, one analytics row each (updated now), in two statements."""
    ids = [uuid.uuid4() for _ in data]
    factory.sql(
        "INSERT INTO users (id, organization_id, email, name, roles) "
        "SELECT u, %s, 'cmp-' || u || '@example.test', 'peer', %s FROM unnest(%s::uuid[]) AS u",
        (org_id, list(roles or [role]), ids),
    )
    _rows(factory, org_id, ids, data, role, analytics_type)
    return ids


def _rows(
    factory: Factory, org_id: UUID, ids: Sequence[UUID], data: Sequence[dict[str, Any]], role: str,
    analytics_type: str,
) -> None:
    factory.sql(
        "INSERT INTO analytics (user_id, organization_id, role, analytics_type, data) "
        "SELECT u, %s, %s, %s, d FROM unnest(%s::uuid[], %s::jsonb[]) AS x(u, d)",
        (org_id, role, analytics_type, list(ids), [Jsonb(d) for d in data]),
    )


def _values(values: Sequence[Any], analytics_type: str = "mastery") -> list[dict[str, Any]]:
    return [{METRIC[analytics_type]: v} for v in values]


def peers(user_id: UUID, role: str | None, analytics_type: str | None = "mastery") -> list[tuple[Any, ...]]:
    """What app.peer_comparison() returns to this user acting in `role`."""
    with db.runtime.transaction(db.as_user(user_id, role)) as (conn, _):
        rows = conn.execute(
            "SELECT analytics_type, user_count, avg_value, p25, p50, p75 FROM app.peer_comparison(%s)",
            (analytics_type,),
        ).fetchall()
    return [tuple(r) for r in rows]


def exact(factory: Factory, org_id: UUID, role: str = "learner") -> list[tuple[str, int, float]]:
    """The view's exact statistics of the organization's groups: (type, users, mean)."""
    rows = factory.sql(
        "SELECT c.analytics_type, c.user_count, r.release_low + c.sum_units::float8 / nullif(c.user_count, 0) "
        "/ 10000 * (r.release_high - r.release_low) FROM comparison_aggregates c "
        "JOIN app.headline_ranges r USING (analytics_type) "
        "WHERE c.organization_id = %s AND c.role = %s AND c.user_count > 0 ORDER BY 1", (org_id, role))
    return [(t, n, round(m, 4)) for t, n, m in rows]


def _org(factory: Factory) -> UUID:
    return factory.org("Comparison").id


def test_nine_users_give_nothing_and_ten_give_a_row(factory: Factory) -> None:
    org = _org(factory)
    values = [0.1 * i for i in range(1, 10)]
    users = _group(factory, org, _values(values))
    factory.refresh_comparison()
    assert peers(users[0], None) == []
    _group(factory, org, _values([1.0]))
    factory.refresh_comparison()
    [(kind, count, avg, p25, p50, p75)] = peers(users[0], None)
    everyone = [*values, 1.0]
    assert (kind, count) == ("mastery", 10)
    assert exact(factory, org) == [("mastery", 10, pytest.approx(statistics.fmean(everyone)))]
    assert 0 <= p25 <= p50 <= p75 <= 1 and 0 <= avg <= 1


def test_never_another_organizations_row(factory: Factory) -> None:
    home, away, empty = _org(factory), _org(factory), factory.org("Empty", solo=["learner"])
    home_users = _group(factory, home, _values([0.2] * 10))
    away_users = _group(factory, away, _values([0.9] * 12))
    _group(factory, away, _values([3.0] * 10, "learning_velocity"), analytics_type="learning_velocity")
    factory.refresh_comparison()
    assert [(r[0], r[1]) for r in peers(home_users[0], None, None)] == [("mastery", 10)]
    assert [(r[0], r[1]) for r in peers(away_users[0], None, None)] == [("learning_velocity", 10), ("mastery", 12)]
    assert exact(factory, home) == [("mastery", 10, 0.2)]
    assert exact(factory, away) == [("learning_velocity", 10, 3.0), ("mastery", 12, 0.9)]
    assert peers(empty.users["solo"], None, None) == []


def test_only_the_callers_active_role(factory: Factory) -> None:
    org = _org(factory)
    both = _group(factory, org, _values([0.2] * 10), roles=["learner", "trainer"])
    _rows(factory, org, both, _values([0.8] * 10), "trainer", "mastery")
    _group(factory, org, _values([0.8] * 2), role="trainer")
    factory.refresh_comparison()
    assert [r[1] for r in peers(both[0], "learner")] == [10]
    assert [r[1] for r in peers(both[0], "trainer")] == [12]
    assert exact(factory, org, "learner") == [("mastery", 10, 0.2)]
    assert exact(factory, org, "trainer") == [("mastery", 12, 0.8)]


def test_rows_older_than_seven_days_are_ignored(factory: Factory) -> None:
    org = _org(factory)
    users = _group(factory, org, _values([0.5] * 9))
    old_user = factory.user(org, ["learner"], name="old")
    stamp = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    factory.analytics(org, old_user, "learner", "mastery", {"mastery": 0.5}, updated_at=stamp)
    factory.refresh_comparison()
    assert peers(users[0], None) == []
    # Six days old still counts.
    factory.sql("ALTER TABLE analytics DISABLE TRIGGER analytics_updated_at")
    try:
        factory.sql("UPDATE analytics SET updated_at = now() - interval '6 days' WHERE user_id = %s", (old_user,))
    finally:
        factory.sql("ALTER TABLE analytics ENABLE TRIGGER analytics_updated_at")
    factory.refresh_comparison()
    assert [r[1] for r in peers(users[0], None)] == [10]


def test_non_numeric_metric_values_are_ignored(factory: Factory) -> None:
    org = _org(factory)
    users = _group(factory, org, _values([0.5] * 9))
    odd = [{"mastery": "0.5"}, {"mastery": None}, {"mastery": [0.5]}, {"mastery": {"v": 0.5}},
           {"mastery": True}, {"velocity": 0.5}, {}]
    _group(factory, org, odd)
    factory.refresh_comparison()
    assert peers(users[0], None) == []
    _group(factory, org, _values([0.9]))
    factory.refresh_comparison()
    [(_, count, *_)] = peers(users[0], None)
    assert count == 10
    assert exact(factory, org) == [("mastery", 10, pytest.approx((0.5 * 9 + 0.9) / 10))]


@pytest.mark.parametrize("analytics_type", sorted(METRIC))
def test_each_type_reads_its_own_metric(factory: Factory, analytics_type: str) -> None:
    org = _org(factory)
    users = _group(factory, org, _values([0.75] * 10, analytics_type), analytics_type=analytics_type)
    # The same number under another type's key is not this type's metric.
    other_key = [{k: 0.75 for k in METRIC.values() if k != METRIC[analytics_type]}] * 10
    _group(factory, org, other_key, analytics_type=analytics_type)
    factory.refresh_comparison()
    assert [(r[0], r[1]) for r in peers(users[0], None, analytics_type)] == [(analytics_type, 10)]
    assert exact(factory, org) == [(analytics_type, 10, 0.75)]


def test_a_value_out_of_range_stays_out_of_its_group_and_stops_nothing(factory: Factory) -> None:
    """A stored value beyond its type's range (written as the owner, as no API write can) is left
    out of its own group and reported; that group and every other organization's still release."""
    bad_org, good_org = _org(factory), _org(factory)
    bad_users = _group(factory, bad_org, _values([0.5] * 10 + [1e200, -3.0, 1e300]))
    good_users = _group(factory, good_org, _values([0.4] * 10))
    run = factory.refresh_comparison()
    assert run.out_of_range >= 3 and run.failed == 0
    assert {p["group"]: p["outOfRange"] for p in run.problems if "outOfRange" in p}[
        f"{bad_org}/learner/mastery"] == 3
    assert exact(factory, bad_org) == [("mastery", 10, 0.5)]
    assert [r[1] for r in peers(bad_users[0], None)] == [10]
    assert [r[1] for r in peers(good_users[0], None)] == [10]


def test_an_unpopulated_view_returns_no_rows(factory: Factory, owner_conn: psycopg.Connection) -> None:
    org = _org(factory)
    users = _group(factory, org, _values([0.5] * 10))
    factory.refresh_comparison()
    assert len(peers(users[0], None)) == 1
    factory.sql("DELETE FROM app.comparison_releases WHERE organization_id = %s", (org,))
    with owner_conn.transaction():
        owner_conn.execute("SELECT app.begin_maintenance()")
        owner_conn.execute("REFRESH MATERIALIZED VIEW comparison_aggregates WITH NO DATA")
    try:
        # Read directly, the empty view is an error; the function answers "nothing yet".
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            owner_conn.execute("SELECT count(*) FROM comparison_aggregates")
        assert peers(users[0], None) == []
        assert peers(users[0], None, None) == []
    finally:
        factory.refresh_comparison()
    assert len(peers(users[0], None)) == 1
