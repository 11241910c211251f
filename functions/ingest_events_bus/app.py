"""Learning events from the platform's EventBridge bus (rule on PlatformEventBusName and the
detail-type LearningEventsDetailType).

The event's `detail` is one batch for one organization, the same events as POST /v1/events
(each with its `userId`):

    {"organizationId": "<uuid>", "events": [{"eventId": "<uuid>", "userId": "<uuid>",
      "verb": "completed", "objectId": "course-42", "objectType": "course", "skills": ["sql"],
      "result": {"score": 0.9, "success": true, "durationSeconds": 1200},
      "occurredAt": "2026-11-26T09:30:00Z"}, ...]}

It is stored as the registered platform client BUS_CLIENT_ID (default `platform-bus`, ingest
scope). Anything wrong (an invalid detail, a user not of that organization, the database) is
logged and raised: nothing is written, and the invocation fails so Lambda retries it and then
hands it to the dead-letter queue. A retried event is harmless: ingest is idempotent.
"""

import os
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from ms8.bus import BusWork, bus_handler
from ms8.schemas.events import EventBatch, IngestResult
from ms8.services.ingest import ingest, parse_bus_detail

CLIENT_ID = os.environ.get("BUS_CLIENT_ID", "platform-bus")


def _answer(result: IngestResult) -> tuple[dict[str, object], dict[str, int], str]:
    counts = {"EventsIngested": result.inserted, "EventsDuplicate": result.duplicates}
    return result.model_dump(mode="json"), counts, "learning events ingested"


@bus_handler(client_id=CLIENT_ID, scope="ingest", failure_metric="IngestFailures",
             failure_message="learning events not ingested")
def lambda_handler(event: EventBridgeEvent) -> BusWork[IngestResult]:
    parsed = parse_bus_detail(event.get("detail"))
    batch = EventBatch(events=parsed.events)
    now = datetime.now(UTC)
    return BusWork(lambda conn, caller: ingest(conn, caller, batch, now), _answer, parsed.organization_id)
