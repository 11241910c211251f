"""The JSON text the analytics upserts send (ms8.repositories.analytics): orjson's, read back as
json's would be; what orjson refuses goes through json as before."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from ms8.repositories import analytics as repo
from ms8.repositories.analytics import SnapshotWrite


def test_the_payload_reads_back_as_the_rows() -> None:
    user, org = uuid.uuid4(), uuid.uuid4()
    through = datetime(2026, 12, 6, 15, 4, 5, 123456, tzinfo=UTC)
    rows = [
        SnapshotWrite(user, org, "learner", "mastery", {"mastery": 0.1 + 0.2, "n": 3, "skills": {"sql": 1.0}}),
        SnapshotWrite(user, org, "trainer", "engagement", {"note": "é ✓ \"q\"", "x": None, "b": True},
                      source="computed", definition_version=2, window_days=30, data_through=through),
    ]
    assert json.loads(repo._payload(rows)) == [
        {"user_id": str(user), "organization_id": str(org), "role": "learner", "analytics_type": "mastery",
         "data": {"mastery": 0.1 + 0.2, "n": 3, "skills": {"sql": 1.0}}, "source": "client",
         "definition_version": None, "window_days": None, "data_through": None},
        {"user_id": str(user), "organization_id": str(org), "role": "trainer", "analytics_type": "engagement",
         "data": {"note": "é ✓ \"q\"", "x": None, "b": True}, "source": "computed", "definition_version": 2,
         "window_days": 30, "data_through": through.isoformat()},
    ]


def test_what_orjson_refuses_is_written_by_json() -> None:
    user = uuid.uuid4()
    for data in ({"note": "\ud800"}, {"n": 10**30}):
        text = repo._json_text([{"user_id": user, "data": data}])
        assert json.loads(text) == [{"user_id": str(user), "data": data}]
