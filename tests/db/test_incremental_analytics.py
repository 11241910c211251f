"""Property: snapshots derived from the learner days that ingest maintains (plus the raw events of
the boundary days) equal the full recomputation from the raw events by the definitions
(ms8.domain.metrics.compute_all), over random histories: time zones with odd offsets and DST,
events on and around every window edge, future events, repeated objects, replayed batches.

Counts, sets and the streak's active days are equal exactly; the 4-decimal figures differ by at
most one unit of the last decimal (the weighted score sums are added in another order, so a
value on a rounding tie may round the other way; see docs/ANALYTICS.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ms8.domain import gamification as rules
from ms8.domain import metrics, vocabulary
from ms8.repositories import events as events_repo
from ms8.services import analytics_refresh

ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "America/New_York", "Pacific/Chatham",
         "Pacific/Kiritimati", "America/Los_Angeles"]
VERBS = list(vocabulary.VERBS)
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
TOLERANCE = 1e-4 + 1e-9  # one unit of the 4th decimal


def _edges(now: datetime, tz: ZoneInfo) -> list[datetime]:
    """Every instant a window starts or ends at, for `now` and `tz`."""
    today = now.astimezone(tz).date()
    window_start, _ = metrics.streak_window(now, tz)
    return [
        now, now - timedelta(weeks=4), now - timedelta(weeks=8), now - timedelta(days=90), now - metrics.READ_WINDOW,
        metrics.local_day_start(today - timedelta(days=metrics.ENGAGEMENT_DAYS - 1), tz),
        metrics.local_day_start(today - timedelta(days=metrics.ENGAGEMENT_SHORT_DAYS - 1), tz),
        metrics.local_day_start(today, tz), metrics.local_day_start(window_start, tz),
        datetime.combine(now.date(), datetime.min.time(), UTC),  # the UTC day's start
    ]


event = st.fixed_dictionaries({
    "verb": st.sampled_from(VERBS),
    "object": st.sampled_from(["a", "b", "c", "d"]),
    "skills": st.lists(st.sampled_from(["sql", "python", "r"]), max_size=2, unique=True),
    "score": st.one_of(st.none(), st.floats(0, 1, allow_nan=False, width=32)),
    "duration": st.one_of(st.none(), st.integers(0, 7200)),
    # where: at an edge (+- a little) or anywhere from 100 days back to 1 day ahead
    "edge": st.one_of(st.none(), st.integers(0, 9)),
    "shift_s": st.sampled_from([-1.0, -1e-6, 0.0, 1e-6, 1.0, -900.0, 899.0]),
    "ago_s": st.floats(-86_000, 100 * 86400, allow_nan=False),
})


@pytest.fixture(scope="module")
def owner(owner_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        yield conn


def _close(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float) and isinstance(b, float):
        assert abs(a - b) <= TOLERANCE, (where, a, b)
    else:
        assert a == b, (where, a, b)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(event, min_size=0, max_size=40),
    zone=st.sampled_from(ZONES),
    back=st.integers(0, 30 * 86400),
    batches=st.integers(1, 3),
    replay=st.booleans(),
)
def test_snapshots_from_days_equal_the_recomputation_from_events(
    owner: psycopg.Connection, history: list[dict[str, Any]], zone: str, back: int, batches: int, replay: bool
) -> None:
    tz = ZoneInfo(zone)
    now = BASE - timedelta(seconds=back, microseconds=back % 997)
    edges = _edges(now, tz)
    org, user = uuid.uuid4(), uuid.uuid4()
    rows = []
    for e in history:
        at = (edges[e["edge"]] + timedelta(seconds=e["shift_s"]) if e["edge"] is not None
              else now - timedelta(seconds=e["ago_s"]))
        rows.append(events_repo.NewEvent(uuid.uuid4(), user, e["verb"], e["object"], "course", e["skills"],
                                         e["score"], None, e["duration"], at.astimezone(UTC)))
    with owner.transaction():
        owner.execute("SELECT app.begin_maintenance()")
        owner.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Property')", (org,))
        owner.execute("INSERT INTO users (id, organization_id, email, name, roles, timezone) "
                      "VALUES (%s, %s, %s, 'p', '{learner}', %s)", (user, org, f"{user}@p.test", zone))
        owner.execute("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.8)",
                      (org,))
        # The ingest statement, in a few batches (days merged on conflict), maybe one replayed.
        size = max(1, -(-len(rows) // batches))
        for i in range(0, len(rows), size):
            events_repo.insert_batch(owner, org, rows[i:i + size])
        if replay and rows:
            events_repo.insert_batch(owner, org, rows[: size])  # stores nothing, adds nothing
        computed = analytics_refresh.compute(owner, [user], now)[user]
        raw = events_repo.window(owner, [user], now - metrics.READ_WINDOW, now).get(user, [])
    expected = metrics.compute_all(raw, now, tz, {"sql": 0.8})
    _close(computed.data, expected, "data")
    window_start, today = metrics.streak_window(now, tz)
    assert computed.active_days == rules.active_days([e.occurred_at for e in raw], tz, window_start, today)
