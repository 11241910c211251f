"""The template's every-minute schedule as `make run` runs it (local.schedules)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from local import apigw, schedules, template
from tests.support.api import call
from tests.support.factories import Factory


def test_only_the_rate_schedules_of_under_an_hour_run_locally() -> None:
    found = {s.function.logical_id: s for s in template.schedules()}
    assert found["RefreshPendingFunction"].rate_seconds == 60
    assert found["RollupAnalyticsFunction"].rate_seconds is None  # a cron expression: by hand
    assert [f.logical_id for f in schedules.frequent()] == ["RefreshPendingFunction"]
    assert template.Schedule(found["RefreshPendingFunction"].function, "rate(2 hours)").rate_seconds == 7200


def test_a_tick_brings_a_platforms_learners_up_to_date(factory: Factory) -> None:
    org = factory.org("Ticks", una=["learner"])
    una = org.users["una"]
    client = factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], org.id)
    event = {"eventId": str(uuid.uuid4()), "userId": str(una), "verb": "completed", "objectId": "c",
             "objectType": "course", "occurredAt": datetime.now(UTC).isoformat()}
    r = call("POST", "/v1/events", claims=apigw.service_claims(client, ["ingest"]), body={"events": [event]})
    assert r.body["usersQueued"] == 1
    logged: list[str] = []
    schedules.Ticker(logged.append, period=3600).tick()
    assert logged == []
    assert factory.sql("SELECT count(*) FROM analytics_pending WHERE user_id = %s", (una,)) == [(0,)]
    assert factory.sql("SELECT count(*) FROM analytics WHERE user_id = %s", (una,)) == [(4,)]
